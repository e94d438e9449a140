import Foundation
import KeyBroker
import KeyBrokerServer
import Testing

@testable import KeyBrokerTestSupport

@Suite("Configuration loading")
struct ConfigLoaderTests {
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory() }

    private func errors(_ yaml: String, environment: [String: String] = [:]) throws -> (path: String, lines: [String]) {
        let path = try directory.write("keybroker.yaml", yaml)
        do {
            _ = try Fixtures.loader(environment: environment).load(path: path)
            Issue.record("the configuration loaded, but errors were expected")
            return (path, [])
        } catch {
            return (path, error.errors.map { $0.description.replacingOccurrences(of: path, with: "F") })
        }
    }

    @Test("the embedded default and every example configuration load")
    func shippedConfigurationsLoad() throws {
        let examples = packageRoot.appendingPathComponent("config/examples")
        let files = try FileManager.default.contentsOfDirectory(atPath: examples.path).filter { $0.hasSuffix(".yaml") }
            .map { examples.appendingPathComponent($0).path }
        #expect(!files.isEmpty)
        for file in files + [packageRoot.appendingPathComponent("config/keybroker.yaml").path] {
            #expect(throws: Never.self, "\(file)") { try Fixtures.loader().load(path: file) }
        }
    }

    @Test("storage.postgres: the URL is checked with what to write, sslmode defaults to verify-full, and the password is never printed")
    func postgresStorage() throws {
        let body = Fixtures.config().replacingOccurrences(
            of: "  sqlite:\n    path: data/keybroker.sqlite",
            with: "  postgres:\n    url: URL"
        )
        for (url, expected) in [
            ("mysql://kb@db/kb", "'url' must be postgres://USER:PASSWORD@HOST:PORT/DATABASE"),
            ("postgres://kb@db", "'url' names no database"),
            ("postgres://db/kb", "'url' names no user"),
            ("postgres://kb@db/kb?sslmode=allow", "use one of disable, prefer, require, verify-ca, verify-full"),
            ("postgres://kb@db/kb?application_name=x", "known: sslmode, sslrootcert, connect_timeout"),
            ("postgres://kb@db:99999/kb", "ports run from 1 to 65535"),
        ] {
            let (_, lines) = try errors(body.replacingOccurrences(of: "URL", with: "\"\(url)\""))
            #expect(lines.contains { $0.contains(expected) }, "\(url): \(lines)")
        }
        let directory = try TemporaryDirectory()
        let path = try directory.write(
            "k.yaml",
            body.replacingOccurrences(of: "URL", with: "\"postgres://kb:hunter2secret@db.internal/kb?sslmode=require\"")
        )
        let loaded = try Fixtures.loader().load(path: path)
        guard case .postgres(let settings) = loaded.config.storage else {
            Issue.record("not PostgreSQL storage")
            return
        }
        #expect(settings.password == "hunter2secret" && settings.host == "db.internal" && settings.port == 5432)
        let warnings = loaded.warnings.map(\.description).joined(separator: "\n")
        #expect(warnings.contains("does not check the certificate of db.internal"), "\(warnings)")
        #expect(warnings.contains("read it from the environment"), "\(warnings)")
        #expect(!warnings.contains("hunter2secret"))
        for shown in ["\(settings)", String(reflecting: settings), "\(Mirror(reflecting: settings).children.map { "\($0.value)" })"] {
            #expect(!shown.contains("hunter2secret"), "\(shown)")
        }
        let strict = try PostgresStorageSettings.parse(url: "postgres://kb@db.internal/kb")
        #expect(strict.tls == .verifyFull && strict.verifiesServer, "the default checks the certificate and the host name")
        #expect(try PostgresStorageSettings.parse(url: "postgres://kb@db/kb?sslmode=require&sslrootcert=/ca.pem").tls == .verifyCA)
    }

    @Test("every mistake is reported at once, each with file:line:column and what is allowed")
    func manyMistakesAtOnce() throws {
        let (_, lines) = try errors(
            """
            server:
              listen: localhost
            storage:
              sqlite:
                path: db.sqlite
                mode: wal
            keystores:
              local:
                type: local-file
                path: master.key
                createIfMissing: yes
              ../evil: { type: none }
              kms: { type: aws-kms-symetric }
              nofile: { type: local-file }
              plain: { type: none, contextKey: "bad key" }
            defaults:
              keystor: local
              keystore: local
              rotation: fortnightly
              keyPairSpec: RSA_1024
            organizations:
              org-1: { keystore: missing, rotation: weekly }
              "../etc/passwd": { keystore: local }
              "org\\u0007bell": {}
              org-2: [local]
            auth:
              tokens:
                - { name: ops, sha256: not-a-hash, permissions: [encryption-key:fly], orgs: ["*"] }
            retention: 30d
            """
        )
        #expect(
            lines == [
                "F:2:11: error: 'server.listen' must be HOST:PORT with a port from 0 (any free port) to 65535 (e.g. 127.0.0.1:8080), found 'localhost'",
                "F:6:5: error: unknown key 'mode' in 'storage.sqlite'; allowed keys: createIfMissing, path",
                "F:11:22: error: 'keystores.local.createIfMissing' must be true or false, found 'yes'",
                "F:12:3: error: keystore name '../evil' is not allowed; allowed: 1-128 characters of letters, digits, '-', '_' or '.', starting with a letter or digit, without '..'",
                "F:13:16: error: unknown keystore type 'aws-kms-symetric'; known types: aws-kms-symmetric, local-file, none (did you mean 'aws-kms-symmetric'?)",
                "F:14:11: error: 'keystores.nofile' needs 'path'; for example: path: ../data/master.key",
                "F:15:36: error: 'keystores.plain.contextKey' must be 1-128 characters of letters, digits, '-', '_', '.', ':' or '/', found 'bad key'",
                "F:17:3: error: unknown key 'keystor' in 'defaults'; allowed keys: keyPairSpec, keystore, rotation (did you mean 'keystore'?)",
                "F:19:13: error: 'defaults.rotation' must be one of daily, weekly, monthly, yearly, never, found 'fortnightly'",
                "F:20:16: error: 'defaults.keyPairSpec' must be one of RSA_2048, RSA_3072, RSA_4096, found 'RSA_1024'",
                "F:22:22: error: 'organizations.org-1.keystore' names keystore 'missing', which is not under 'keystores'; configured keystores: kms, local, nofile, plain",
                "F:23:3: error: '../etc/passwd' is not a valid organization id; allowed: 1-128 characters of letters, digits, '-', '_' or '.', starting with a letter or digit, without '..'",
                "F:24:3: error: 'org\\u{07}bell' is not a valid organization id; allowed: 1-128 characters of letters, digits, '-', '_' or '.', starting with a letter or digit, without '..'",
                "F:25:10: error: 'organizations.org-2' must be a mapping of keys to values, found a list",
                "F:28:28: error: 'auth.tokens[0].sha256' must be the 64-hex-digit SHA-256 of the token, not the token itself",
                "F:28:54: error: 'auth.tokens[0].permissions[0]' must be one of encryption-key:view, encryption-key:edit, recording:encrypt, recording:decrypt, found 'encryption-key:fly' (did you mean 'encryption-key:view'?)",
                "F:29:1: error: unknown key 'retention' at the top level; allowed keys: audit, auth, defaults, keystores, organizations, privateKeyCache, scheduler, server, storage, tenantKeystores",
            ]
        )
    }

    @Test("a token hash is 64 ASCII hex digits: full-width digits, which Character.isHexDigit admits, are refused")
    func tokenHashIsASCIIHex() throws {
        for hash in [
            String(repeating: "\u{FF11}", count: 64), String(repeating: "a", count: 63) + "\u{FF41}", String(repeating: "g", count: 64),
        ] {
            let (_, lines) = try errors(
                """
                storage: { sqlite: { path: db.sqlite } }
                keystores: { local: { type: none } }
                defaults: { keystore: local }
                auth:
                  tokens:
                    - { name: ops, sha256: "\(hash)", permissions: [encryption-key:view] }
                """
            )
            #expect(lines.contains { $0.contains("'auth.tokens[0].sha256' must be the 64-hex-digit SHA-256") }, "\(hash) must be refused")
        }
    }

    @Test("YAML syntax errors name the place")
    func syntaxError() throws {
        let (_, lines) = try errors(
            """
            storage:
              sqlite: { path: db.sqlite
            keystores: {}
            """
        )
        #expect(lines.count == 1)
        #expect(lines[0].hasPrefix("F:3:"))
        #expect(lines[0].contains("invalid YAML"))
    }

    @Test("a missing section says what to write")
    func missingSections() throws {
        let (_, lines) = try errors("server: { listen: 127.0.0.1:9000 }\n")
        #expect(
            lines == [
                "F:1:1: error: the configuration needs 'storage'; for example: storage: { sqlite: { path: ../data/keybroker.sqlite } }",
                "F:1:1: error: the configuration needs 'keystores'; for example: keystores: { local: { type: local-file, path: ../data/master.key, createIfMissing: true } }",
            ]
        )
    }

    @Test("with several keystores, defaults.keystore is required")
    func defaultKeystoreRequired() throws {
        let (_, lines) = try errors(
            """
            storage: { sqlite: { path: db.sqlite } }
            keystores:
              a: { type: none }
              b: { type: none }
            defaults: { rotation: weekly }
            """
        )
        #expect(lines == ["F:5:11: error: 'defaults.keystore' is required when several keystores are configured; set it to one of: a, b"])
    }

    @Test("${VAR} reads the environment; unset without default is an error; $$ is a literal $")
    func environmentSubstitution() throws {
        let yaml = """
            storage: { sqlite: { path: "${DATA_DIR}/db.sqlite" } }
            keystores:
              local: { type: local-file, path: "${KEY_DIR:-keys}/m$$.key" }
            """
        let path = try directory.write("env.yaml", yaml)
        let loaded = try Fixtures.loader(environment: ["DATA_DIR": "/var/lib/kb"]).load(path: path)
        #expect(
            loaded.config.storage
                == .sqlite(SQLiteStorageSettings(path: URL(fileURLWithPath: "/var/lib/kb/db.sqlite"), createIfMissing: true))
        )

        let (_, lines) = try errors(yaml)
        #expect(
            lines == [
                "F:1:28: error: 'storage.sqlite.path' uses ${DATA_DIR}, but the environment variable DATA_DIR is not set; set it, or write ${DATA_DIR:-default}"
            ]
        )
    }

    @Test("relative paths resolve against the configuration file's directory")
    func relativePaths() throws {
        let path = try directory.write(
            "etc/keybroker.yaml",
            """
            storage: { sqlite: { path: ../data/db.sqlite } }
            keystores: { local: { type: none } }
            """
        )
        let loaded = try Fixtures.loader().load(path: path)
        #expect(
            loaded.config.storage
                == .sqlite(
                    SQLiteStorageSettings(
                        path: directory.url.appendingPathComponent("data/db.sqlite").standardizedFileURL,
                        createIfMissing: true
                    )
                )
        )
    }

    @Test("the policy of an organization: its own settings, then the keystore's spec, then defaults")
    func policyPrecedence() throws {
        let path = try directory.write(
            "p.yaml",
            """
            storage: { sqlite: { path: db.sqlite } }
            keystores:
              big: { type: none, keyPairSpec: RSA_4096 }
              small: { type: none }
            defaults: { keystore: small, rotation: yearly, keyPairSpec: RSA_2048 }
            organizations:
              a: { keystore: big }
              b: { keystore: big, keyPairSpec: RSA_3072, rotation: daily }
              c:
            """
        )
        let config = try Fixtures.loader().load(path: path).config
        #expect(
            config.policy(for: Fixtures.org("a"))
                == OrganizationPolicy(keystore: "big", rotation: .yearly, keyPairSpec: .rsa4096, source: .operator)
        )
        #expect(
            config.policy(for: Fixtures.org("b"))
                == OrganizationPolicy(keystore: "big", rotation: .daily, keyPairSpec: .rsa3072, source: .operator)
        )
        #expect(
            config.policy(for: Fixtures.org("c"))
                == OrganizationPolicy(keystore: "small", rotation: .yearly, keyPairSpec: .rsa2048, source: .operator)
        )
        #expect(config.policy(for: Fixtures.org("unlisted")).keystore == "small")
        #expect(config.policy(for: Fixtures.org("unlisted")).source == .default)
    }

    @Test("organizations using the none keystore draw a warning, not an error")
    func noneKeystoreWarns() throws {
        let path = try directory.write(
            "w.yaml",
            """
            storage: { sqlite: { path: db.sqlite } }
            keystores:
              local: { type: local-file, path: m.key }
              plain: { type: none }
            defaults: { keystore: local }
            organizations:
              dev-org: { keystore: plain }
            """
        )
        let loaded = try Fixtures.loader().load(path: path)
        #expect(
            loaded.warnings.map(\.description) == [
                "\(path):7:12: warning: organization 'dev-org' uses keystore 'plain', which stores its private keys UNWRAPPED in the database"
            ]
        )
    }

    @Test("tokens are read with their permissions and scopes")
    func tokens() throws {
        let hash = String(repeating: "ab", count: 32)
        let path = try directory.write(
            "t.yaml",
            """
            storage: { sqlite: { path: db.sqlite } }
            keystores: { local: { type: none } }
            auth:
              tokens:
                - { name: ops, sha256: \(hash), permissions: [encryption-key:view, encryption-key:edit], orgs: ["*"] }
                - { name: rec, sha256: \(String(repeating: "CD", count: 32)), permissions: [recording:decrypt], orgs: [org-1, org-2] }
            """
        )
        let tokens = try Fixtures.loader().load(path: path).config.auth.tokens
        #expect(tokens.count == 2)
        #expect(tokens[0].organizations == nil)
        #expect(tokens[0].permissions == [.viewKeys, .editKeys])
        #expect(tokens[1].sha256 == String(repeating: "cd", count: 32), "stored lowercase")
        #expect(tokens[1].organizations == [Fixtures.org("org-1"), Fixtures.org("org-2")])
    }

    @Test(
        "organization ids: UUIDs and simple names pass; path-like and control characters do not",
        arguments: [
            ("7f3c2a10-5b7e-4c1d-9a0b-3e2f1d4c5b6a", true), ("acme", true), ("acme.eu_1", true),
            ("../x", false), ("a/b", false), ("a..b", false), (".hidden", false), ("", false), ("a b", false),
            ("tab\there", false), (String(repeating: "a", count: 129), false), ("é", false),
        ]
    )
    func organizationIDs(value: String, valid: Bool) {
        #expect(OrganizationID.isValid(value) == valid)
    }
}

@Suite("Configuration loading: tokens and environment edge cases")
struct ConfigEdgeCaseTests {
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory() }

    private func lines(_ yaml: String, environment: [String: String] = [:]) throws -> [String] {
        let path = try directory.write("c.yaml", yaml)
        do {
            _ = try Fixtures.loader(environment: environment).load(path: path)
            return []
        } catch {
            return error.errors.map { $0.description.replacingOccurrences(of: path, with: "F") }
        }
    }

    @Test("tokens need permissions and organizations, and '*' is not mixed with ids")
    func tokenScopes() throws {
        let hash = String(repeating: "0", count: 64)
        #expect(
            try lines(
                """
                storage: { sqlite: { path: db.sqlite } }
                keystores: { local: { type: none } }
                auth:
                  tokens:
                    - { name: a, sha256: \(hash), permissions: [], orgs: ["*"] }
                    - { name: b, sha256: \(hash), permissions: [recording:decrypt], orgs: [] }
                    - { name: c, sha256: \(hash), permissions: [recording:decrypt], orgs: ["*", acme] }
                    - { name: c, sha256: \(hash), permissions: [recording:decrypt], orgs: [acme] }
                """
            ).filter { !$0.contains("same sha256") } == [
                "F:5:105: error: 'auth.tokens[0].permissions' is empty; it needs at least one of: encryption-key:view, encryption-key:edit, recording:encrypt, recording:decrypt",
                "F:6:132: error: 'auth.tokens[1].orgs' is empty; list organization ids, or [\"*\"] for all",
                "F:7:132: error: 'auth.tokens[2].orgs' mixes \"*\" with organization ids; write either [\"*\"] or the ids",
                "F:8:7: error: token name 'c' is used twice; each token needs its own name for the audit log",
            ]
        )
    }

    @Test("two tokens may not share a hash")
    func duplicateHashes() throws {
        let hash = String(repeating: "1", count: 64)
        #expect(
            try lines(
                """
                storage: { sqlite: { path: db.sqlite } }
                keystores: { local: { type: none } }
                auth:
                  tokens:
                    - { name: a, sha256: \(hash), permissions: [recording:decrypt], orgs: [acme] }
                    - { name: b, sha256: \(hash), permissions: [encryption-key:edit], orgs: ["*"] }
                """
            ) == [
                "F:6:7: error: token 'b' has the same sha256 as an earlier token; create a separate token (keybroker token create)"
            ]
        )
    }

    @Test("the hash of an empty token is refused: it would admit a blank bearer token")
    func emptyTokenHash() throws {
        for hash in [
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        ] {
            #expect(
                try lines(
                    """
                    storage: { sqlite: { path: db.sqlite } }
                    keystores: { local: { type: none } }
                    auth:
                      tokens:
                        - { name: a, sha256: \(hash), permissions: [recording:decrypt], orgs: [acme] }
                    """
                ) == [
                    "F:5:26: error: 'auth.tokens[0].sha256' is the SHA-256 of an empty string, which would admit a request with a blank token; create a token with: keybroker token create"
                ]
            )
        }
    }

    @Test("${VAR:-default} applies to empty variables too; an unclosed ${ is an error")
    func environmentEdges() throws {
        let yaml = """
            storage: { sqlite: { path: "${DIR:-fallback}/db.sqlite" } }
            keystores: { local: { type: local-file, path: "${KEY" } }
            """
        #expect(
            try lines(yaml, environment: ["DIR": ""]) == [
                "F:2:47: error: 'keystores.local.path' has '${' without a closing '}'; write ${NAME} or ${NAME:-default} (use $$ for a literal $)"
            ]
        )
    }
}
