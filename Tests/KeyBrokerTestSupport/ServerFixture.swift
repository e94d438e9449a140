import Crypto
import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KeyBroker
import KeyBrokerSQLite
import KeyBrokerServer
import Logging
import NIOCore
import NIOFoundationEssentialsCompat
import Testing

/// An in-process server on a configuration in a temporary directory, with tokens of
/// several scopes:
/// - `admin`: every permission, every organization;
/// - `viewer`: encryption-key:view, every organization;
/// - `acme-recorder`: recording:encrypt and recording:decrypt for `acme`;
/// - `acme-admin`: encryption-key:view and :edit for `acme`.
struct ServerFixture: Sendable {
    let directory: TemporaryDirectory
    let server: KeyBrokerServer
    let tokens: [String: String]
    let configPath: String

    /// Fixed tokens of every scope, for servers started as a process (their configuration is
    /// written before any server exists to make tokens for).
    static let fixedTokens: [String: String] = Dictionary(uniqueKeysWithValues: tokenScopes.map { ($0.name, "t-\($0.name)") })

    static let tokenScopes: [(name: String, permissions: String, orgs: String)] = [
        ("admin", "[encryption-key:view, encryption-key:edit, recording:encrypt, recording:decrypt]", "[\"*\"]"),
        ("viewer", "[encryption-key:view]", "[\"*\"]"),
        ("acme-recorder", "[recording:encrypt, recording:decrypt]", "[acme]"),
        ("acme-admin", "[encryption-key:view, encryption-key:edit]", "[acme]"),
    ]

    /// The YAML of a configuration with the fixture's tokens.
    static func yaml(tokens: [String: String], body: String) -> String {
        let lines = tokenScopes.map { scope in
            let hash = tokenHash(tokens[scope.name]!)
            return "    - { name: \(scope.name), sha256: \(hash), permissions: \(scope.permissions), orgs: \(scope.orgs) }"
        }
        return body + "\nauth:\n  tokens:\n" + lines.joined(separator: "\n") + "\n"
    }

    static func tokenHash(_ token: String) -> String {
        Data(SHA256.hash(data: Data(token.utf8))).hexEncodedString()
    }

    /// The default body: `local` (local-file), `other` (local-file), `plain` (none), plus extra keystores.
    static func configBody(
        organizations: String = "{ acme: { rotation: weekly }, beta: {} }",
        extraKeystores: String = "",
        extra: String = "",
        audit: String = "{ destination: audit.log }"
    ) -> String {
        Fixtures.config(organizations: organizations, extraKeystores: extraKeystores) + "\naudit: \(audit)\n" + extra
    }

    static func make(
        body: String = configBody(),
        directory: TemporaryDirectory? = nil,
        now: @escaping @Sendable () -> Date = { Date() },
        environment: [String: String] = [:],
        store makeStore: (any KeyPairStore) -> any KeyPairStore = { $0 }
    ) async throws -> ServerFixture {
        let directory = try directory ?? TemporaryDirectory()
        var tokens: [String: String] = [:]
        for scope in tokenScopes { tokens[scope.name] = TokenAuthenticator.newToken().token }
        let path = try directory.write("keybroker.yaml", yaml(tokens: tokens, body: body))
        let loader = Fixtures.loader(environment: environment, extra: [FailingKeystorePlugin.self, CountingKeystorePlugin.self])
        let loaded = try loader.load(path: path)
        guard case .sqlite(let settings) = loaded.config.storage else { fatalError() }
        // A test that opens a second server on a directory never stopped the first one, which
        // would have given its rotation lease up when stopping: given up here for it.
        if FileManager.default.fileExists(atPath: settings.path.path) {
            let queue = try DatabaseQueue(path: settings.path.path)
            try await queue.write { db in
                if try db.tableExists("lease") { try db.execute(sql: "UPDATE lease SET expires_at_us = 0") }
            }
            try queue.close()
        }
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let server = try await KeyBrokerServer(
            loaded: loaded,
            source: { () throws(ConfigError) in try loader.load(path: path) },
            loadCandidate: { text throws(ConfigError) in
                try loader.loadCandidate(text: text, field: "keystore", source: "request body", relativeTo: path)
            },
            store: makeStore(try SQLiteKeyPairStore(settings)),
            now: now,
            logger: logger
        )
        return ServerFixture(directory: directory, server: server, tokens: tokens, configPath: path)
    }

    /// Rewrites the configuration file keeping the tokens (for reload tests).
    func rewrite(body: String) throws {
        try directory.write("keybroker.yaml", Self.yaml(tokens: tokens, body: body))
    }

    /// Runs `body` against the router in-process.
    func test(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let app = Application(responder: server.responder())
        try await app.test(.router, body)
    }

    /// A configuration body moved to `config/keybroker.yaml` of a directory, where the
    /// built `keybroker` finds it: its data and audit paths point one level up.
    static func inConfigFolder(_ body: String) -> String {
        body.replacingOccurrences(of: "path: data/", with: "path: ../data/")
            .replacingOccurrences(of: "destination: audit.log", with: "destination: ../audit.log")
    }

    /// An unwrap request body: `dataKey` wrapped with the pair's public key.
    static func unwrapBody(_ pair: KeyPairRecord, _ dataKey: Data) throws -> ByteBuffer {
        let wrapped = try PublicKeyEncryption.wrapDataKey(dataKey, publicKeyDER: pair.publicKeyDER)
        return try ByteBuffer(json: ["keyPairId": pair.id.uuidString, "wrappedKey": wrapped.base64EncodedString()])
    }

    func headers(_ token: String?) -> HTTPFields {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let token { headers[.authorization] = "Bearer \(tokens[token] ?? token)" }
        return headers
    }
}

extension TestResponse {
    var text: String { String(buffer: body) }

    func json<T: Decodable>(_ type: T.Type) throws -> T {
        try APIJSON.decoder.decode(T.self, from: Data(buffer: body))
    }

    var errorCode: String? { try? json(ErrorBody.self).error.code }
}

extension ByteBuffer {
    init(json object: Any) throws {
        self.init(data: try JSONSerialization.data(withJSONObject: object))
    }
}

extension Fixtures {
    /// Writes `value` (SQL) into `column` of the stored pair `id`, as an edit or damage would.
    static func editRow(_ fixture: ServerFixture, column: String, value: String, of id: UUID) throws {
        let queue = try DatabaseQueue(path: fixture.directory.path("data/keybroker.sqlite"))
        try queue.write { db in
            try db.execute(sql: "UPDATE key_pair SET \(column) = \(value) WHERE id = ?", arguments: [id.uuidString.lowercased()])
        }
        try queue.close()
    }

    /// A record with a real RSA-2048 public key, for store tests.
    static func sampleRecord(organization: String = "org-a") throws -> KeyPairRecord {
        let key = try TestKeys.rsa2048()
        return KeyPairRecord(
            id: UUID(),
            organization: Fixtures.org(organization),
            keystoreName: "plain",
            keystoreType: "none",
            backendKeyReference: nil,
            spec: .rsa2048,
            publicKeyDER: key.publicKeyDER,
            wrappedPrivateKey: Data([1, 2, 3]),
            encryptionContext: .organization(Fixtures.org(organization)),
            createdAt: Date(),
            reason: .manual,
            requestedBy: "test"
        )
    }
}
