#!/usr/bin/env python3
"""Starts a real KMS-compatible server on 127.0.0.1 for KeyBroker's tests and controls it.

    kms_test_server.py moto [--auth]        moto_server; --auth switches SigV4 checking on
    kms_test_server.py localstack --python PY   LocalStack's KMS (no Docker) from a venv

It prints one JSON line describing the server, then reads JSON commands from stdin, one
per line, answering each with one JSON line. When stdin closes (the test process ended),
it stops the server by PID. Commands (boto3 against the server):

    {"op": "create_key", "alias": "name"?, "multi_region": bool?, "region": "r"?}
    {"op": "replicate_key", "key": ARN, "region": "r"}
    {"op": "disable_key"|"enable_key"|"schedule_deletion"|"cancel_deletion", "key": ARN}
    {"op": "update_alias", "alias": "name", "key": ARN}   re-point alias/name to another key
    {"op": "decrypt", "ciphertext": base64, "context": {...}}   KMS Decrypt with that context:
                                                 {"keyId": ARN, "plaintextLength": n} or {"error": code}
    {"op": "stop"} / {"op": "start"}            stop or restart the server on the same port
    {"op": "proxy"}                              start a fault-injecting proxy in front of it
    {"op": "tls_proxy", "certificate": F, "key": F}  a fault-free proxy over TLS (the test's own CA)
    {"op": "proxy_down"} / {"op": "proxy_up"}    stop the proxy's listener (an endpoint outage that
                                                 keeps the server's state) / listen again, same port
    {"op": "faults", "actions": [...]}           next requests through the proxy: "throttle",
                                                 "500", "delay:SECONDS", "close",
                                                 "rewrite-keyid:ARN", "corrupt-ciphertext" (a
                                                 flipped bit in the answer's ciphertext), "pass",
                                                 or an answer below;
                                                 "Operation=action" applies to that operation only
    {"op": "mode", "mode": M, "operation": O?}   every request (of operation O) gets M until the
                                                 mode is "pass" again
    {"op": "counts"}                             requests per KMS operation seen by the proxy

Malformed answers (as actions or modes), each one way a KMS-compatible endpoint can misbehave:
    type:#  type:#Foo  type:prefixed   400 with __type "#", "#Foo",
                                       "com.amazon.coral.service#ThrottlingException:http://internal"
    no-type  empty-400  non-json-400   400 without __type, with no body, with text
    html-502                           502 with an HTML page (a proxy's error page)
    header-type:#                      400, x-amzn-ErrorType "#", body {}
    ok-non-json  ok-empty  ok-wrong-types  ok-bad-base64  ok-huge
                                       200 with text, nothing, numbers for strings, base64
                                       fields that are not base64, a 20 MB body
    truncated                          200 announcing 1000 bytes, sending 10, closing

Slow answers (as actions or modes):
    trickle                            the real server's answer, its body sent one byte a second
    blackhole                          the request is read and never answered (until the client
                                       hangs up, or two minutes)
A refused connection is proxy_down.

The proxy is a test fault injector, not a KMS: every request it does not fail on purpose
is forwarded, unchanged, to the real server.
"""
import argparse
import base64
import http.client
import http.server
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

REGION = "eu-west-1"
ACCOUNT = "123456789012"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, process, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited early with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server did not listen on 127.0.0.1:{port} within {seconds}s")


class Server:
    def __init__(self, kind, auth, python):
        self.kind, self.auth, self.python = kind, auth, python
        self.port = free_port()
        self.process = None
        self.volume = tempfile.mkdtemp(prefix="kb-kms-")
        self.log = open(os.path.join(self.volume, "server.log"), "wb")

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        env = dict(os.environ)
        env.update(AWS_DEFAULT_REGION=REGION, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
        if self.kind == "moto":
            if self.auth:
                env["INITIAL_NO_AUTH_ACTION_COUNT"] = "5" if self.process is None else "0"
            command = ["moto_server", "-H", "127.0.0.1", "-p", str(self.port)]
            seconds = 30
        else:
            env.update(
                SERVICES="kms", STRICT_SERVICE_LOADING="1", EAGER_SERVICE_LOADING="1",
                GATEWAY_LISTEN=f"127.0.0.1:{self.port}", LOCALSTACK_HOST=f"127.0.0.1:{self.port}",
                GATEWAY_SERVER="hypercorn", DNS_ADDRESS="0", DISABLE_EVENTS="1", SKIP_SSL_CERT_DOWNLOAD="1",
                PERSISTENCE="0", LOCALSTACK_VOLUME_DIR=self.volume,
            )
            command = [self.python, "-m", "localstack.runtime.main"]
            seconds = 90
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=self.log, start_new_session=True)
        wait_for_port(self.port, self.process, seconds)
        if self.kind == "localstack":
            self._wait_ready()

    def _wait_ready(self):
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/_localstack/health")
                body = json.loads(conn.getresponse().read() or b"{}")
                if body.get("services", {}).get("kms") in ("running", "available"):
                    return
            except Exception:
                pass
            time.sleep(0.2)
        raise SystemExit("LocalStack's KMS did not become ready")

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.actions = []
        self.mode = ("pass", None)
        self.counts = {}

    def next(self, operation):
        with self.lock:
            self.counts[operation] = self.counts.get(operation, 0) + 1
            for index, action in enumerate(self.actions):
                target, _, scoped = action.partition("=")
                if not scoped:
                    return self.actions.pop(index)
                if target == operation:
                    self.actions.pop(index)
                    return scoped
            mode, target = self.mode
            if target is None or target == operation:
                return mode
            return "pass"


MALFORMED = {
    "type:#": (400, {}, json.dumps({"__type": "#", "message": "hash only"})),
    "type:#Foo": (400, {}, json.dumps({"__type": "#Foo", "message": "unknown code"})),
    "type:prefixed": (400, {}, json.dumps({
        "__type": "com.amazon.coral.service#ThrottlingException:http://internal.amazon.com/coral/com.amazon.coral.service/",
        "message": "Rate exceeded"})),
    "no-type": (400, {}, json.dumps({"message": "an error without a type"})),
    "empty-400": (400, {}, ""),
    "non-json-400": (400, {}, "this is not JSON"),
    "html-502": (502, {"Content-Type": "text/html"}, "<html><body><h1>502 Bad Gateway</h1></body></html>"),
    "header-type:#": (400, {"x-amzn-ErrorType": "#"}, "{}"),
    "ok-non-json": (200, {}, "this is not JSON"),
    "ok-empty": (200, {}, ""),
    "ok-wrong-types": (200, {}, json.dumps({
        "KeyId": 7, "Plaintext": [1, 2], "CiphertextBlob": {"a": 1}, "PublicKey": 3,
        "PrivateKeyCiphertextBlob": None, "KeyMetadata": "none"})),
}


def make_proxy(server, faults, port=0, tls=None):
    connections = set()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            connections.add(self.connection)

        def finish(self):
            connections.discard(self.connection)
            super().finish()

        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            operation = (self.headers.get("X-Amz-Target") or "").split(".")[-1]
            action = faults.next(operation)
            if action in MALFORMED:
                status, headers, text = MALFORMED[action]
                return self.raw(status, headers, text.encode())
            if action == "ok-huge":
                return self.raw(200, {}, b'{"KeyId": "' + b"x" * (20 * 1024 * 1024) + b'"}')
            if action == "truncated":
                self.send_response(200)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b'{"KeyId":"')
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if action == "throttle":
                return self.reply(400, {"__type": "ThrottlingException", "message": "Rate exceeded"})
            if action == "500":
                return self.reply(500, {"__type": "KMSInternalException", "message": "injected internal error"})
            if action == "close":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if action.startswith("delay:"):
                time.sleep(float(action.split(":", 1)[1]))
            if action == "blackhole":
                return self.hold()
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            conn.putrequest("POST", self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                conn.putheader(name, value)
            conn.endheaders(body)
            response = conn.getresponse()
            data = response.read()
            if action.startswith("rewrite-keyid:") and response.status == 200:
                document = json.loads(data)
                document["KeyId"] = action.split(":", 1)[1]
                data = json.dumps(document).encode()
            if action == "corrupt-ciphertext" and response.status == 200:
                import base64
                document = json.loads(data)
                for field in ("CiphertextBlob", "PrivateKeyCiphertextBlob"):
                    if field in document:
                        blob = bytearray(base64.b64decode(document[field]))
                        blob[-1] ^= 0x01
                        document[field] = base64.b64encode(bytes(blob)).decode()
                data = json.dumps(document).encode()
            if action == "ok-bad-base64" and response.status == 200:
                document = json.loads(data)
                for field in ("Plaintext", "CiphertextBlob", "PublicKey", "PrivateKeyCiphertextBlob"):
                    if field in document:
                        document[field] = "!!not base64!!"
                data = json.dumps(document).encode()
            self.send_response(response.status)
            self.send_header("Content-Type", response.getheader("Content-Type", "application/x-amz-json-1.1"))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                if action == "trickle":
                    self.wfile.flush()
                    for byte in data:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(1)
                else:
                    self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out or was cut off on purpose
            self.close_connection = action == "trickle"

        def hold(self):
            """Answers nothing, until the client hangs up (or two minutes pass)."""
            import select
            self.close_connection = True
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                readable, _, _ = select.select([self.connection], [], [], 0.5)
                if readable:
                    try:
                        if not self.connection.recv(4096):
                            return
                    except OSError:
                        return

        def raw(self, status, headers, data):
            self.send_response(status)
            if "Content-Type" not in headers:
                self.send_header("Content-Type", "application/x-amz-json-1.1")
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up on a large answer, as it should

        def reply(self, status, document):
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    if tls:
        # TLS in front of the KMS server, with a certificate the test made (its own CA).
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls["certificate"], tls["key"])
        proxy.socket = context.wrap_socket(proxy.socket, server_side=True)
    proxy.daemon_threads = True
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    proxy.open_connections = connections
    return proxy


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["moto", "localstack"])
    parser.add_argument("--auth", action="store_true")
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()

    import boto3
    import botocore.exceptions
    from botocore.config import Config

    server = Server(args.kind, args.auth, args.python)
    signal.signal(signal.SIGTERM, lambda *_: (server.stop(), os._exit(0)))
    try:
        server.start()
        config = Config(retries={"max_attempts": 1})
        boot = dict(endpoint_url=server.endpoint, region_name=REGION, aws_access_key_id="test",
                    aws_secret_access_key="test", config=config)
        access_key_id, secret = "test", "test"
        if args.kind == "moto" and args.auth:
            # The first five requests are not checked: make a user whose key signs the rest.
            iam = boto3.client("iam", **boot)
            iam.create_user(UserName="keybroker")
            iam.put_user_policy(UserName="keybroker", PolicyName="all", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
            key = iam.create_access_key(UserName="keybroker")["AccessKey"]
            access_key_id, secret = key["AccessKeyId"], key["SecretAccessKey"]
        kms_args = dict(boot, aws_access_key_id=access_key_id, aws_secret_access_key=secret)
        kms = boto3.client("kms", **kms_args)
        created = kms.create_key(Description="keybroker tests")["KeyMetadata"]
        kms.create_alias(AliasName="alias/recordings", TargetKeyId=created["KeyId"])
        clients = {REGION: kms}

        def client(region):
            if region not in clients:
                clients[region] = boto3.client("kms", **dict(kms_args, region_name=region))
            return clients[region]

        account = created["Arn"].split(":")[4]
        print(json.dumps({
            "endpoint": server.endpoint, "pid": server.process.pid, "region": REGION, "account": account,
            "accessKeyId": access_key_id, "secretAccessKey": secret, "keyArn": created["Arn"],
            "aliasArn": f"arn:aws:kms:{REGION}:{account}:alias/recordings",
        }), flush=True)

        faults = Faults()
        proxy = None
        proxy_port = 0
        for line in sys.stdin:
            if not line.strip():
                continue
            command = json.loads(line)
            op = command["op"]
            try:
                if op == "create_key":
                    region = command.get("region", REGION)
                    metadata = client(region).create_key(
                        Description="keybroker tests", MultiRegion=bool(command.get("multi_region")))["KeyMetadata"]
                    if command.get("alias"):
                        client(region).create_alias(AliasName="alias/" + command["alias"], TargetKeyId=metadata["KeyId"])
                    answer = {"arn": metadata["Arn"], "keyId": metadata["KeyId"]}
                elif op == "replicate_key":
                    replica = client(command["key"].split(":")[3]).replicate_key(
                        KeyId=command["key"], ReplicaRegion=command["region"])["ReplicaKeyMetadata"]
                    answer = {"arn": replica["Arn"]}
                elif op == "disable_key":
                    kms.disable_key(KeyId=command["key"]); answer = {}
                elif op == "enable_key":
                    kms.enable_key(KeyId=command["key"]); answer = {}
                elif op == "schedule_deletion":
                    kms.schedule_key_deletion(KeyId=command["key"], PendingWindowInDays=7); answer = {}
                elif op == "cancel_deletion":
                    kms.cancel_key_deletion(KeyId=command["key"]); answer = {}
                elif op == "update_alias":
                    # The key id, not its ARN: LocalStack resolves only ids as an alias target.
                    kms.update_alias(AliasName="alias/" + command["alias"], TargetKeyId=command["key"].split("/")[-1]); answer = {}
                elif op == "decrypt":
                    try:
                        result = kms.decrypt(CiphertextBlob=base64.b64decode(command["ciphertext"]),
                                             EncryptionContext=command.get("context", {}))
                        answer = {"keyId": result["KeyId"], "plaintextLength": len(result["Plaintext"])}
                    except botocore.exceptions.ClientError as error:
                        answer = {"refused": error.response["Error"]["Code"]}
                elif op == "stop":
                    server.stop(); answer = {}
                elif op == "start":
                    server.start(); answer = {}
                elif op == "proxy":
                    proxy = proxy or make_proxy(server, faults)
                    answer = {"endpoint": f"http://127.0.0.1:{proxy.server_address[1]}"}
                elif op == "tls_proxy":
                    # A second, fault-free proxy that speaks TLS: {"certificate": PEM file, "key": PEM file}.
                    tls_proxy = make_proxy(server, Faults(), tls=command)
                    answer = {"endpoint": f"https://127.0.0.1:{tls_proxy.server_address[1]}"}
                elif op == "proxy_down":
                    if proxy:
                        proxy_port = proxy.server_address[1]
                        proxy.shutdown()
                        proxy.server_close()
                        # Kept-alive connections would go on serving: cut them too.
                        for connection in list(proxy.open_connections):
                            try:
                                connection.shutdown(socket.SHUT_RDWR)
                            except OSError:
                                pass
                        proxy = None
                    answer = {}
                elif op == "proxy_up":
                    proxy = proxy or make_proxy(server, faults, proxy_port)
                    answer = {"endpoint": f"http://127.0.0.1:{proxy.server_address[1]}"}
                elif op == "faults":
                    with faults.lock:
                        faults.actions = list(command["actions"])
                    answer = {}
                elif op == "mode":
                    with faults.lock:
                        faults.mode = (command["mode"], command.get("operation"))
                    answer = {}
                elif op == "counts":
                    with faults.lock:
                        answer = {"counts": dict(faults.counts)}
                else:
                    answer = {"error": f"unknown op {op}"}
            except Exception as error:  # report, keep serving
                answer = {"error": f"{type(error).__name__}: {error}"}
            print(json.dumps(answer), flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
