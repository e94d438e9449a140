import Foundation
import KeyBroker
import Testing

@testable import AWSKMSKeystore
@testable import KeyBrokerTestSupport

@Suite("AWS SigV4 signer")
struct SigV4Tests {
    let example = AWSCredentials(
        accessKeyID: "AKIDEXAMPLE",
        secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        sessionToken: nil,
        source: "test"
    )
    let date = Date(timeIntervalSince1970: 1_440_938_160)  // 20150830T123600Z

    @Test("the get-vanilla case of the AWS SigV4 test suite")
    func getVanilla() {
        let headers = SigV4Signer(service: "service", region: "us-east-1").sign(
            method: "GET",
            path: "/",
            headers: [("Host", "example.amazonaws.com")],
            body: Data(),
            credentials: example,
            date: date
        )
        #expect(headers.first { $0.0 == "X-Amz-Date" }?.1 == "20150830T123600Z")
        #expect(
            headers.first { $0.0 == "Authorization" }?.1
                == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        )
    }

    @Test("the IAM ListUsers example of the AWS general reference")
    func iamListUsers() {
        let headers = SigV4Signer(service: "iam", region: "us-east-1").sign(
            method: "GET",
            path: "/",
            query: "Action=ListUsers&Version=2010-05-08",
            headers: [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"), ("Host", "iam.amazonaws.com")],
            body: Data(),
            credentials: example,
            date: date
        )
        #expect(
            headers.first { $0.0 == "Authorization" }?.1
                == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        )
    }

    @Test("a session token is sent and signed; the secret appears nowhere in the output")
    func sessionToken() {
        let credentials = AWSCredentials(accessKeyID: "AKID", secretAccessKey: "s3cr3t/KEY", sessionToken: "TOKEN==", source: "test")
        let headers = SigV4Signer(service: "kms", region: "eu-west-1").sign(
            method: "POST",
            path: "/",
            headers: [("Host", "kms.eu-west-1.amazonaws.com")],
            body: Data("{}".utf8),
            credentials: credentials,
            date: date
        )
        #expect(headers.first { $0.0 == "X-Amz-Security-Token" }?.1 == "TOKEN==")
        let authorization = headers.first { $0.0 == "Authorization" }?.1 ?? ""
        #expect(authorization.contains("SignedHeaders=host;x-amz-date;x-amz-security-token,"))
        #expect(!headers.contains { $0.1.contains("s3cr3t") })
        #expect(!credentials.description.contains("s3cr3t"))
    }
}

@Suite("aws-kms-symmetric configuration")
struct AWSKMSConfigTests {
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory() }

    private func load(_ keystore: String) throws -> Result<any Keystore, ConfigError> {
        let path = try directory.write("c.yaml", "type: aws-kms-symmetric\n" + keystore)
        return Result { () throws(ConfigError) in
            try Fixtures.loader(environment: ["HOME": directory.url.path]).loadCandidate(path: path).keystore
        }
    }

    private func errors(_ keystore: String) throws -> [String] {
        guard case .failure(let error) = try load(keystore) else { return [] }
        return error.errors.map { "\($0.location!.line):\($0.location!.column): \($0.message)" }
    }

    @Test("an alias ARN in the home region is used as written; the default endpoint is the region's")
    func aliasARN() throws {
        let keystore = try #require(
            try load("keyAlias: arn:aws:kms:eu-west-1:111122223333:alias/recordings\nregion: eu-west-1\n").get() as? AWSKMSKeystore
        )
        #expect(keystore.key.description == "arn:aws:kms:eu-west-1:111122223333:alias/recordings")
        #expect(keystore.generation == .dataKeyPair)
        #expect(keystore.client.endpoint.absoluteString == "https://kms.eu-west-1.amazonaws.com")
    }

    @Test("a multi-Region key ARN from another region is rewritten to the home region's replica")
    func multiRegion() throws {
        let keystore = try #require(
            try load(
                "keyAlias: arn:aws:kms:us-east-1:111122223333:key/mrk-1234567890abcdef1234567890abcdef\nregion: eu-west-1\ngeneration: local\n"
            ).get() as? AWSKMSKeystore
        )
        #expect(keystore.key.description == "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234567890abcdef1234567890abcdef")
        #expect(keystore.generation == .local)
    }

    @Test("bad ARNs, region mismatches and incomplete credentials are errors that show what to write")
    func mistakes() throws {
        #expect(
            try errors("keyAlias: alias/recordings\nregion: eu-west-1\n") == [
                "2:11: 'keyAlias' must be \(KMSKeyARN.expectedShape), found 'alias/recordings'"
            ]
        )
        #expect(
            try errors("keyAlias: arn:aws:kms:us-east-1:111122223333:alias/recordings\nregion: eu-west-1\n") == [
                "2:11: 'keyAlias' is in region us-east-1, but the home region is eu-west-1; use a key in eu-west-1, or a multi-Region key (key/mrk-…) that has a replica in eu-west-1"
            ]
        )
        #expect(
            try errors(
                "keyAlias: arn:aws:kms:eu-west-1:111122223333:alias/r\nregion: eu-west-1\ngeneration: remote\naccessKeyId: AKID\nendpoint: ftp://x\nrequestTimeout: 5 seconds\nretries: { maxAttempts: 50 }\n"
            ) == [
                "4:13: 'generation' must be one of data-key-pair, local, found 'remote'",
                "5:14: 'accessKeyId' needs secretAccessKey beside it (write both with ${VAR} references, not literal secrets)",
                "6:11: 'endpoint' must be an http(s) URL such as https://kms.eu-west-1.amazonaws.com, found 'ftp://x'",
                "7:17: 'requestTimeout' must be a duration such as 500ms, 5s or 2m, from 0.1 seconds to 120.0 seconds, found '5 seconds'",
                "8:25: 'retries.maxAttempts' must be a whole number from 1 to 10, found '50'",
            ]
        )
        #expect(
            try errors("keyAlias: arn:aws:kms:eu-west-1:111122223333:alias/r\nregion: eu-west-1\naccessKeyId: AKID\n") == [
                "4:14: 'accessKeyId' needs secretAccessKey beside it (write both with ${VAR} references, not literal secrets)"
            ]
        )
        #expect(
            try errors("keyAlias: arn:aws:kms:eu-west-1:111122223333:alias/r\nregion: Europe\n") == [
                "3:9: 'region' must be an AWS region such as eu-west-1, found 'Europe'"
            ]
        )
    }

    @Test(
        "ARN forms",
        arguments: [
            ("arn:aws:kms:eu-west-1:111122223333:alias/recordings", true),
            ("arn:aws:kms:eu-west-1:111122223333:alias/team/recordings_2", true),
            ("arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", true),
            ("arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/mrk-1234567890abcdef1234567890abcdef", true),
            ("arn:aws:kms:eu-west-1:11112222333:alias/short-account", false),
            ("arn:aws:s3:eu-west-1:111122223333:alias/x", false),
            ("arn:aws:kms:eu-west-1:111122223333:key/not-a-key-id", false),
            ("arn:aws:kms:eu-west-1:111122223333:alias/", false),
            ("arn:aws:kms:eu-west-1:111122223333:alias/with space", false),
        ]
    )
    func arnForms(text: String, valid: Bool) {
        #expect((KMSKeyARN(text) != nil) == valid)
        if valid { #expect(KMSKeyARN(text)?.description == text) }
    }
}

@Suite("AWS credential chain")
struct CredentialChainTests {
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory() }

    private func file() throws -> String {
        try directory.write(
            "credentials",
            """
            # shared credentials
            [default]
            aws_access_key_id = AKIDDEFAULT
            aws_secret_access_key = default-secret

            [profile ops]
            aws_access_key_id=AKIDOPS
            aws_secret_access_key=ops-secret
            aws_session_token = ops-token
            """
        )
    }

    @Test("static keys, then the environment (unless profile: is configured), then the shared file with profile:, AWS_PROFILE or default")
    func order() throws {
        let path = try file()
        let fixed = AWSCredentials(accessKeyID: "AKIDSTATIC", secretAccessKey: "x", sessionToken: nil, source: "config")
        let environment = ["AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "env-secret", "AWS_SHARED_CREDENTIALS_FILE": path]
        #expect(
            try AWSCredentialChain(staticCredentials: fixed, profile: nil, environment: environment).credentials().accessKeyID
                == "AKIDSTATIC"
        )
        #expect(
            try AWSCredentialChain(staticCredentials: nil, profile: nil, environment: environment).credentials().accessKeyID == "AKIDENV"
        )
        #expect(
            try AWSCredentialChain(staticCredentials: nil, profile: "ops", environment: environment).credentials().accessKeyID == "AKIDOPS",
            "an explicit profile wins"
        )
        let fileOnly = ["AWS_SHARED_CREDENTIALS_FILE": path]
        #expect(
            try AWSCredentialChain(staticCredentials: nil, profile: nil, environment: fileOnly).credentials().accessKeyID == "AKIDDEFAULT"
        )
        let ops = try AWSCredentialChain(staticCredentials: nil, profile: "ops", environment: fileOnly).credentials()
        #expect(ops.accessKeyID == "AKIDOPS")
        #expect(ops.sessionToken == "ops-token")
        #expect(ops.source == "profile 'ops' in \(path)")
        #expect(
            try AWSCredentialChain(staticCredentials: nil, profile: nil, environment: fileOnly.merging(["AWS_PROFILE": "ops"]) { $1 })
                .credentials().accessKeyID == "AKIDOPS"
        )
    }

    @Test("an empty environment (a candidate sent over the API) reaches no shared credentials file")
    func emptyEnvironment() throws {
        let error = #expect(throws: AWSCredentialError.self) {
            try AWSCredentialChain(staticCredentials: nil, profile: nil, environment: [:]).credentials()
        }
        #expect(error?.description.contains("no HOME or AWS_SHARED_CREDENTIALS_FILE") == true)
    }

    @Test("missing credentials say where KeyBroker looked")
    func missing() throws {
        let error = #expect(throws: AWSCredentialError.self) {
            try AWSCredentialChain(staticCredentials: nil, profile: nil, environment: ["HOME": directory.url.path]).credentials()
        }
        #expect(error?.description.contains("no readable shared credentials file at \(directory.url.path)/.aws/credentials") == true)
        let path = try file()
        let unknown = #expect(throws: AWSCredentialError.self) {
            try AWSCredentialChain(staticCredentials: nil, profile: "prod", environment: ["AWS_SHARED_CREDENTIALS_FILE": path])
                .credentials()
        }
        #expect(unknown?.description == "profile 'prod' is not in \(path); profiles there: default, ops")
    }
}

@Suite("KMS error parsing")
struct KMSErrorParsingTests {
    @Test("JSON errors keep their type without the namespace prefix, and their message")
    func json() {
        let error = KMSClient.parseError(
            status: 400,
            body: Data(#"{"__type":"com.amazonaws.kms#DisabledException","message":"arn:... is disabled."}"#.utf8),
            headerType: nil,
            attempts: 1
        )
        #expect(error.code == "DisabledException")
        #expect(error.message == "arn:... is disabled.")
        let capital = KMSClient.parseError(
            status: 400,
            body: Data(#"{"__type":"NotFoundException","Message":"Alias not found"}"#.utf8),
            headerType: nil,
            attempts: 1
        )
        #expect(capital.description == "NotFoundException: Alias not found")
    }

    @Test("XML authentication errors are read too")
    func xml() {
        let body =
            "<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error></ErrorResponse>"
        let error = KMSClient.parseError(status: 403, body: Data(body.utf8), headerType: nil, attempts: 1)
        #expect(error.code == "SignatureDoesNotMatch")
        #expect(error.message == "The request signature we calculated does not match")
        #expect(!error.isRetryable)
    }

    @Test("throttling and 5xx are retryable; other 4xx are not")
    func retryable() {
        #expect(KMSError(code: "ThrottlingException", message: "", status: 400, attempts: 1).isRetryable)
        #expect(KMSError(code: "KMSInternalException", message: "", status: 500, attempts: 1).isRetryable)
        #expect(KMSError(code: "ConnectionFailed", message: "", status: nil, attempts: 1).isRetryable)
        #expect(!KMSError(code: "AccessDeniedException", message: "", status: 400, attempts: 1).isRetryable)
    }
}

@Suite("aws-kms-symmetric credentials in the configuration")
struct AWSKMSCredentialSettingsTests {
    @Test("an empty credential value counts as unset; one of the static keys without the other is an error")
    func emptyAndHalfCredentials() throws {
        let directory = try TemporaryDirectory()
        let base =
            "storage: { sqlite: { path: db.sqlite } }\nkeystores:\n  kms: { type: aws-kms-symmetric, keyAlias: \"arn:aws:kms:eu-west-1:111122223333:alias/x\", region: eu-west-1"
        let empty = try directory.write(
            "empty.yaml",
            base + ", accessKeyId: \"${ID:-}\", secretAccessKey: \"${SECRET:-}\", profile: \"${P:-}\" }\n"
        )
        #expect(throws: Never.self) { try Fixtures.loader().load(path: empty) }
        for (name, keys, message) in [
            ("secret-only.yaml", "secretAccessKey: x", "'keystores.kms.secretAccessKey' needs accessKeyId beside it"),
            ("id-only.yaml", "accessKeyId: AKIAX", "'keystores.kms.accessKeyId' needs secretAccessKey beside it"),
            ("token-only.yaml", "sessionToken: tok", "'keystores.kms.sessionToken' needs accessKeyId and secretAccessKey beside it"),
        ] {
            let path = try directory.write(name, base + ", \(keys) }\n")
            let error = #expect(throws: ConfigError.self) { try Fixtures.loader().load(path: path) }
            #expect(error?.description.contains(message) == true, "\(name): \(error?.description ?? "")")
        }
    }

    @Test("a candidate sent over the API without its own keys is refused when it loads, not when it first signs")
    func candidateNeedsItsOwnKeys() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write("keybroker.yaml", "storage: { sqlite: { path: db.sqlite } }\nkeystores: {}\n")
        let loader = Fixtures.loader(environment: ["AWS_ACCESS_KEY_ID": "AKIASERVER", "AWS_SECRET_ACCESS_KEY": "server-secret"])
        let candidate = "{ name: c, type: aws-kms-symmetric, keyAlias: \"arn:aws:kms:eu-west-1:111122223333:alias/x\", region: eu-west-1"
        let error = #expect(throws: ConfigError.self) {
            try loader.loadCandidate(text: candidate + " }", source: "request body", relativeTo: path)
        }
        #expect(error?.description.contains("needs its own accessKeyId and secretAccessKey") == true, "\(error?.description ?? "")")
        #expect(throws: Never.self) {
            try loader.loadCandidate(
                text: candidate + ", accessKeyId: AKIAC, secretAccessKey: c }",
                source: "request body",
                relativeTo: path
            )
        }
        // The same keystore in the configuration file may sign with the server's identity.
        let file = try directory.write("candidate.yaml", candidate + " }\n")
        #expect(throws: Never.self) { try loader.loadCandidate(path: file) }
    }
}
