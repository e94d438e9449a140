"""Schemathesis hooks for the API fuzz (Tests/keybrokerTests/APIFuzzLoadSensitiveTests.swift).

They hold what docs/openapi.yaml cannot know about the one server the fuzz runs against,
and nothing else: every other request is sent as generated.

- `POST /v1/orgs/{org}/test` gets no `aws-kms-symmetric` candidate: a valid one makes the
  server call AWS KMS at the candidate's region (a candidate may not name an endpoint), and
  the fuzz talks to 127.0.0.1 only. `none` candidates, bodies that are not candidates, and
  empty bodies are all sent.
- A tenant's `keyAlias` (`PUT …/key-configuration`, `POST …/key-configuration/test`) is moved
  into the fuzz server's home region (`HOME_REGION`, its `tenantKeystores` template), as
  the document says it must be; the template's endpoint is a closed port on 127.0.0.1, so
  such a configuration's test fails (422 `test_failed` on save, `passed: false` on test).
"""

import os
import re
import urllib.request

import schemathesis

HOME_REGION = "eu-west-1"
ARN = re.compile(r"^(arn:aws(?:-cn|-us-gov)?:kms:)([a-z0-9]+(?:-[a-z0-9]+){2,})(:[0-9]{12}:.*)$", re.DOTALL)


def _is_aws_candidate(body):
    return isinstance(body, dict) and isinstance(body.get("keystore"), dict) and body["keystore"].get("type") == "aws-kms-symmetric"


@schemathesis.hook
def filter_case(context, case):
    if case.operation.path == "/v1/orgs/{org}/test" and case.method.upper() == "POST":
        return not _is_aws_candidate(case.body)
    return True


@schemathesis.hook
def map_case(context, case):
    if case.operation.path.endswith("/key-configuration") or case.operation.path.endswith("/key-configuration/test"):
        body = case.body
        if isinstance(body, dict) and body.get("type") == "aws-kms-symmetric" and isinstance(body.get("keyAlias"), str):
            match = ARN.match(body["keyAlias"])
            if match and "key/mrk-" not in body["keyAlias"]:
                case.body = {**body, "keyAlias": match.group(1) + HOME_REGION + match.group(3)}
    return case


@schemathesis.hook
def after_call(context, case, response):
    """Lifts each revocation the fuzz makes at once, so that the operations fuzzed after it are
    not all answered 403 `organization_revoked` (RevocationTests cover a revoked organization)."""
    if case.operation.path == "/v1/orgs/{org}/revoke" and response.status_code == 200:
        url = os.environ["KEYBROKER_FUZZ_URL"] + response.request.path_url.rsplit("/", 1)[0] + "/restore"
        request = urllib.request.Request(
            url, method="POST", headers={"Authorization": "Bearer " + os.environ["KEYBROKER_FUZZ_TOKEN"]}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()
