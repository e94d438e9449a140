import Foundation
import KeyBroker
import Testing

@testable import KeyBrokerTestSupport

/// The admin CLI end to end: the built `keybroker` executable, run in a temporary directory
/// with a real configuration, as an operator would.
@Suite("keybroker CLI")
struct CLITests {
    let directory: TemporaryDirectory

    init() throws {
        directory = try TemporaryDirectory()
        try directory.write("config/keybroker.yaml", Fixtures.config().replacingOccurrences(of: "path: data/", with: "path: ../data/"))
    }

    private func keybroker(_ arguments: String...) throws -> ProcessResult {
        try ProcessRunner.run(ProcessRunner.keybroker, arguments, in: directory.url)
    }

    private func json(_ result: ProcessResult) throws -> Any {
        try JSONSerialization.jsonObject(with: result.stdout)
    }

    @Test("org show, test, set and reset on the store: the tenant's flow without a server, audited")
    func organizationConfigurationFlow() throws {
        let shown = try json(try keybroker("org", "show", "--org", "tenant-1", "--json")) as? [String: Any]
        #expect(shown?["source"] as? String == "default" && shown?["version"] as? Int == 0)
        #expect(shown?["offeredTypes"] as? [String] == ["default"], "no tenantKeystores: the default only")

        let refused = try keybroker(
            "org",
            "set",
            "--org",
            "tenant-1",
            "--type",
            "aws-kms-symmetric",
            "--key-alias",
            "arn:aws:kms:eu-west-1:111122223333:alias/x"
        )
        #expect(refused.status == 2, "a type the server does not offer is a usage error")
        #expect(refused.stderr.contains("offers no keystore types to tenants"), "\(refused.stderr)")
        let badRotation = try keybroker("org", "set", "--org", "tenant-1", "--type", "default", "--rotation", "fortnightly")
        #expect(badRotation.status == 2 && badRotation.stderr.contains("rotation must be one of"), "\(badRotation.stderr)")

        let tested = try keybroker("org", "test", "--org", "tenant-1", "--type", "default", "--rotation", "daily")
        #expect(tested.status == 0, "\(tested.stderr)")
        #expect(try keybroker("keys", "list", "--org", "tenant-1").stdoutText.split(separator: "\n").count <= 1, "a test saves nothing")

        let set =
            try json(
                try keybroker("org", "set", "--org", "tenant-1", "--type", "default", "--rotation", "daily", "--if-match", "0", "--json")
            )
            as? [String: Any]
        let configuration = set?["configuration"] as? [String: Any]
        #expect(configuration?["source"] as? String == "tenant" && configuration?["rotation"] as? String == "daily")
        #expect(configuration?["version"] as? Int == 1)
        #expect((set?["keyPair"] as? [String: Any])?["reason"] as? String == "config-change")

        let stale = try keybroker("org", "set", "--org", "tenant-1", "--type", "default", "--if-match", "0")
        #expect(stale.status == 1 && stale.stderr.contains("now version 1"), "\(stale.stderr)")

        let reset = try keybroker("org", "reset", "--org", "tenant-1")
        #expect(reset.status == 0, "\(reset.stderr)")
        #expect(reset.stdoutText.contains("source        default"), "\(reset.stdoutText)")
        let text = try keybroker("org", "show", "--org", "tenant-1")
        #expect(text.stdoutText.contains("version       2"), "\(text.stdoutText)")
        #expect(try keybroker("keys", "list", "--org", "tenant-1", "--json").stdout.count > 2)
        #expect(reset.stderr.contains(#""event":"configure""#), "every change is audited (to stderr by default)")
    }

    @Test("validate, generate, list, public, test and status on a fresh directory")
    func operatorFlow() throws {
        let validate = try keybroker("config", "validate")
        #expect(validate.status == 0, "\(validate.stderr)")
        #expect(
            validate.stdoutText.hasPrefix("config/keybroker.yaml: valid; keystores: local (local-file), other (local-file), plain (none)")
        )
        #expect(!FileManager.default.fileExists(atPath: directory.path("data")), "validate must change nothing")

        let test = try keybroker("test", "--org", "acme")
        #expect(test.status == 0, "\(test.stderr)")
        #expect(test.stdoutText.contains("PASSED: the keystore works for this organization"))
        #expect(test.stdoutText.contains("context-binding      PASSED"))

        let generated = try keybroker("keys", "generate", "--org", "acme", "--json")
        #expect(generated.status == 0, "\(generated.stderr)")
        let first = try #require(try json(generated) as? [String: Any])
        #expect(first["organization"] as? String == "acme")
        #expect(first["reason"] as? String == "manual")
        #expect(first["spec"] as? String == "RSA_2048")
        #expect(
            Set(first.keys) == [
                "id", "organization", "current", "createdAt", "reason", "requestedBy", "keystore", "keystoreType",
                "backendKeyReference", "spec", "publicKeyFingerprint",
            ],
            "no key material in the output"
        )
        #expect(try keybroker("keys", "generate", "--org", "acme").status == 0)

        let list = try #require(try json(try keybroker("keys", "list", "--org", "acme", "--json")) as? [[String: Any]])
        #expect(list.count == 2)
        #expect(list.map { $0["current"] as? Bool } == [true, false])
        #expect(list.last?["id"] as? String == first["id"] as? String)

        let text = try keybroker("keys", "list", "--org", "acme")
        #expect(text.stdoutText.hasPrefix("ID  "))
        #expect(text.stdoutText.split(separator: "\n").count == 3)

        let der = try keybroker("keys", "public", "--org", "acme", "--format", "der")
        #expect(der.status == 0)
        #expect(PublicKeyEncryption.fingerprint(ofDER: der.stdout) == list.first?["publicKeyFingerprint"] as? String)
        let pem = try keybroker("keys", "public", "--org", "acme")
        #expect(pem.stdoutText.hasPrefix("-----BEGIN PUBLIC KEY-----\n"))

        let status = try #require(try json(try keybroker("status", "--json")) as? [String: Any])
        let keystores = try #require(status["keystores"] as? [[String: Any]])
        #expect(keystores.map { $0["name"] as? String } == ["local", "other", "plain"])
        let summary = try #require(status["summary"] as? [String: Any])
        #expect(summary["organizations"] as? Int == 1)
        #expect((status["organizations"] as? [[String: Any]])?.isEmpty == true, "acme's pair is new: nothing is due")
        let statusText = try keybroker("status")
        #expect(statusText.stdoutText.contains("ORGANIZATIONS\n1 with a key pair (local: 1)"), "\(statusText.stdoutText)")
        #expect(statusText.stdoutText.contains("none needs attention"))
        let orgs = try #require(try json(try keybroker("orgs", "--json")) as? [String: Any])
        let items = try #require(orgs["items"] as? [[String: Any]])
        #expect(items.map { $0["organization"] as? String } == ["acme"])
        #expect((items.first?["currentKeyPair"] as? [String: Any])?["id"] as? String == list.first?["id"] as? String)
        #expect(try keybroker("orgs").stdoutText.contains("acme"))

        let mode = try FileManager.default.attributesOfItem(atPath: directory.path("data/master.key"))[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test("a broken configuration exits 2 with every error on its own stderr line")
    func brokenConfiguration() throws {
        try directory.write(
            "config/keybroker.yaml",
            """
            storage: { sqlite: { path: ../data/db.sqlite } }
            keystores:
              local: { type: local-fil, path: m.key }
            defaults: { keystore: local, rotation: hourly }
            """
        )
        let result = try keybroker("config", "validate")
        #expect(result.status == 2)
        #expect(result.stdout.isEmpty)
        #expect(
            result.stderr == """
                keybroker: config/keybroker.yaml:3:18: error: unknown keystore type 'local-fil'; known types: aws-kms-symmetric, local-file, none (did you mean 'local-file'?)
                keybroker: config/keybroker.yaml:4:40: error: 'defaults.rotation' must be one of daily, weekly, monthly, yearly, never, found 'hourly'

                """
        )
        let json = try #require(try json(try keybroker("config", "validate", "--json")) as? [String: Any])
        #expect(json["valid"] as? Bool == false)
        #expect((json["diagnostics"] as? [[String: Any]])?.first?["line"] as? Int == 3)
        #expect(try keybroker("status").status == 2)
    }

    @Test("usage errors exit 2; operations that fail exit 1")
    func exitCodes() throws {
        let badOrg = try keybroker("keys", "list", "--org", "../etc")
        #expect(badOrg.status == 2)
        #expect(badOrg.stderr.contains("'../etc' is not a valid organization id"))
        #expect(try keybroker("keys", "list").status == 2)
        #expect(try keybroker("no-such-command").status == 2)
        let missing = try keybroker("status", "--config", "nope.yaml")
        #expect(missing.status == 2)
        #expect(
            missing.stderr
                == "keybroker: error: configuration file 'nope.yaml' does not exist; pass --config PATH (the embedded default is config/keybroker.yaml)\n"
        )

        let noPair = try keybroker("keys", "public", "--org", "nobody")
        #expect(noPair.status == 1)
        #expect(
            noPair.stderr
                == "keybroker: error: organization 'nobody' has no key pair yet; create one with: keybroker keys generate --org nobody\n"
        )
        #expect(try keybroker("--help").status == 0)
        let cleartext = try keybroker("status", "--server", "http://kb.example.internal:8080")
        #expect(cleartext.status == 2)
        #expect(cleartext.stderr.contains("--server must use https unless it is on this host"))
    }

    @Test("test --candidate checks a keystore that is not configured, and a failing one exits 1 with the failing step")
    func candidate() throws {
        try directory.write("candidate.yaml", "type: local-file\npath: data/candidate.key\ncreateIfMissing: true\nkeyPairSpec: RSA_2048\n")
        let passing = try keybroker("test", "--org", "acme", "--candidate", "candidate.yaml", "--json")
        #expect(passing.status == 0, "\(passing.stderr)")
        let report = try #require(try json(passing) as? [String: Any])
        #expect(report["keystore"] as? String == "candidate")
        #expect(report["passed"] as? Bool == true)

        let key = directory.path("loose.key")
        #expect(
            FileManager.default.createFile(atPath: key, contents: Data(repeating: 1, count: 32), attributes: [.posixPermissions: 0o644])
        )
        try directory.write("loose.yaml", "type: local-file\npath: loose.key\n")
        let failing = try keybroker("test", "--org", "acme", "--candidate", "loose.yaml")
        #expect(failing.status == 1)
        #expect(failing.stdoutText.contains("generate-key-pair    FAILED"))
        #expect(failing.stdoutText.contains("chmod 600"))
        #expect(failing.stdoutText.contains("FAILED: see the failing step above"))

        try directory.write("typo.yaml", "type: local-file\npaht: x.key\n")
        let typo = try keybroker("test", "--org", "acme", "--candidate", "typo.yaml")
        #expect(typo.status == 2)
        #expect(typo.stderr.contains("typo.yaml:2:1: error: unknown key 'paht'"))

        let list = try keybroker("keys", "list", "--org", "acme", "--json")
        #expect(try json(list) as? [Any] != nil)
        #expect((try json(list) as? [Any])?.isEmpty == true, "a test saves nothing")
    }

    @Test("removing a keystore that stored pairs need is refused by every command")
    func removedKeystoreRefused() throws {
        try directory.write(
            "config/keybroker.yaml",
            Fixtures.config(organizations: "{ acme: { keystore: other } }").replacingOccurrences(of: "path: data/", with: "path: ../data/")
        )
        #expect(try keybroker("keys", "generate", "--org", "acme").status == 0)
        try directory.write(
            "config/keybroker.yaml",
            """
            storage: { sqlite: { path: ../data/keybroker.sqlite } }
            keystores:
              local: { type: local-file, path: ../data/master.key }
            """
        )
        for command in [["config", "validate"], ["status"], ["keys", "list", "--org", "acme"]] {
            let result = try ProcessRunner.run(ProcessRunner.keybroker, command, in: directory.url)
            #expect(result.status == 2, "\(command)")
            #expect(
                result.stderr.contains("keystore 'other' is not configured, but 1 stored key pair(s) need it to decrypt (acme: 1)"),
                "\(command)"
            )
        }
    }

    @Test("encrypt, inspect and decrypt recordings, files and pipes; a damaged file leaves no output")
    func recordings() throws {
        #expect(try keybroker("keys", "generate", "--org", "acme").status == 0)
        let plaintext = Data((0..<200_000).map { _ in UInt8.random(in: 0...255) })
        try plaintext.write(to: directory.url.appendingPathComponent("call.wav"))

        let encrypt = try keybroker("encrypt", "--org", "acme", "call.wav", "call.kbr")
        #expect(encrypt.status == 0, "\(encrypt.stderr)")
        #expect(encrypt.stderr.isEmpty, "no progress when stderr is not a terminal")
        let inspect = try keybroker("inspect", "call.kbr", "--json")
        let header = try #require(try json(inspect) as? [String: Any])
        #expect(header["organization"] as? String == "acme")
        #expect(header["keyPairSpec"] as? String == "RSA_2048")
        #expect(header["segmentSize"] as? Int == 65536)
        #expect(try keybroker("inspect", "call.kbr").stdoutText.contains("organization:  acme"))

        let decrypt = try keybroker("decrypt", "call.kbr", "call.out")
        #expect(decrypt.status == 0, "\(decrypt.stderr)")
        #expect(try Data(contentsOf: directory.url.appendingPathComponent("call.out")) == plaintext)

        // Pipes: - for standard input and output.
        let piped = try ProcessRunner.run(
            ProcessRunner.keybroker,
            ["encrypt", "--org", "acme", "-", "-"],
            in: directory.url,
            stdin: plaintext
        )
        #expect(piped.status == 0)
        let back = try ProcessRunner.run(ProcessRunner.keybroker, ["decrypt", "-", "-"], in: directory.url, stdin: piped.stdout)
        #expect(back.stdout == plaintext)

        // Another organization's recording is refused with --org; a damaged one leaves nothing behind.
        let wrongOrg = try keybroker("decrypt", "--org", "beta", "call.kbr", "wrong.out")
        #expect(wrongOrg.status == 1)
        #expect(wrongOrg.stderr == "keybroker: error: the recording belongs to organization 'acme', not 'beta'\n")
        var damaged = try Data(contentsOf: directory.url.appendingPathComponent("call.kbr"))
        damaged[damaged.count - 100] ^= 1
        try damaged.write(to: directory.url.appendingPathComponent("damaged.kbr"))
        let failed = try keybroker("decrypt", "damaged.kbr", "damaged.out")
        #expect(failed.status == 1)
        #expect(failed.stderr.contains("authentication failed at segment 3"))
        #expect(!FileManager.default.fileExists(atPath: directory.path("damaged.out")))
        let foreign = try keybroker("inspect", "config/keybroker.yaml")
        #expect(foreign.status == 1)
        #expect(foreign.stderr.contains("not a KeyBroker recording (bad magic"))
    }

    @Test("aws key-policy prints statements that grant exactly the needed actions under the organization condition")
    func awsKeyPolicy() throws {
        let kms =
            "{ type: aws-kms-symmetric, keyAlias: \"arn:aws:kms:eu-west-1:111122223333:alias/recordings\", region: eu-west-1, contextKey: tenant-id }"
        try directory.write(
            "config/keybroker.yaml",
            Fixtures.config(
                organizations: "{ acme: { keystore: kms }, beta: { keystore: kms }, gamma: {} }",
                extraKeystores: "  kms: \(kms)"
            )
        )
        let result = try keybroker("aws", "key-policy", "--keystore", "kms", "--account", "444455556666")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(
            result.stderr.contains(
                "add these statements to the key policy of the KMS key behind arn:aws:kms:eu-west-1:111122223333:alias/recordings (generation: data-key-pair)"
            )
        )
        let statements = try #require(try json(result) as? [[String: Any]])
        #expect(statements.map { $0["Sid"] as? String } == ["KeyBrokerDescribeKey", "KeyBrokerWrapOrganizationKeys"])
        let wrap = statements[1]
        #expect((wrap["Principal"] as? [String: String])?["AWS"] == "arn:aws:iam::444455556666:root")
        #expect(wrap["Action"] as? [String] == ["kms:GenerateDataKeyPairWithoutPlaintext", "kms:Decrypt"])
        let condition = try #require(wrap["Condition"] as? [String: [String: [String]]])
        #expect(condition["StringEquals"]?["kms:EncryptionContext:tenant-id"] == ["acme", "beta"])
        #expect(condition["ForAllValues:StringEquals"]?["kms:EncryptionContextKeys"] == ["tenant-id"])

        let one = try keybroker(
            "aws",
            "key-policy",
            "--keystore",
            "kms",
            "--principal",
            "arn:aws:iam::444455556666:role/keybroker",
            "--org",
            "gamma"
        )
        let scoped = try #require(try json(one) as? [[String: Any]])
        #expect(
            ((scoped[1]["Condition"] as? [String: [String: [String]]])?["StringEquals"]?["kms:EncryptionContext:tenant-id"]) == ["gamma"]
        )
        #expect(try keybroker("aws", "key-policy", "--keystore", "local", "--account", "444455556666").status == 2)
        #expect(try keybroker("aws", "key-policy", "--keystore", "kms", "--account", "12").status == 2)
    }
}
