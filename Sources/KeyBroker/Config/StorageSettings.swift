public import Foundation

/// `storage:`.
public enum StorageSettings: Sendable, Hashable {
    /// A SQLite database file.
    case sqlite(SQLiteStorageSettings)
    /// A PostgreSQL database that several replicas share.
    case postgres(PostgresStorageSettings)
}

/// `storage.postgres`: where the database is and how to reach it. The password is never
/// printed (``description``, ``debugDescription`` and the mirror leave it out).
public struct PostgresStorageSettings: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    /// `sslmode`, as libpq names them.
    public enum TLSMode: String, Sendable, Hashable, CaseIterable {
        /// Plain TCP.
        case disable
        /// TLS when the server offers it, without checking its certificate (an active attacker
        /// can downgrade it to plain TCP).
        case prefer
        /// TLS, without checking the server's certificate.
        case require
        /// TLS, with the server's certificate checked against the trusted roots.
        case verifyCA = "verify-ca"
        /// TLS, with the certificate checked and the host name matched.
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var tls: TLSMode
    /// `sslrootcert`: the CA file for `verify-ca` and `verify-full` (default: the system's roots).
    public var rootCertificate: URL?
    /// The most connections this replica opens (one more is held for LISTEN).
    public var maxConnections: Int
    /// How long a connection attempt may take.
    public var connectTimeout: Duration

    /// Settings.
    public init(
        host: String,
        port: Int = 5432,
        user: String,
        password: String?,
        database: String,
        tls: TLSMode = .verifyFull,
        rootCertificate: URL? = nil,
        maxConnections: Int = 10,
        connectTimeout: Duration = .seconds(5)
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.tls = tls
        self.rootCertificate = rootCertificate
        self.maxConnections = maxConnections
        self.connectTimeout = connectTimeout
    }

    /// Reads a `postgres://user:password@host:port/database?sslmode=…&sslrootcert=…` URL.
    /// - Throws: a message saying what is wrong (never repeating the password).
    public static func parse(
        url text: String,
        resolvePath: (String) -> URL = { URL(fileURLWithPath: $0) }
    ) throws(ParseError)
        -> PostgresStorageSettings
    {
        guard let components = URLComponents(string: text), ["postgres", "postgresql"].contains(components.scheme ?? "") else {
            throw ParseError(
                "'url' must be postgres://USER:PASSWORD@HOST:PORT/DATABASE (e.g. postgres://keybroker@127.0.0.1:5432/keybroker)"
            )
        }
        guard let host = components.host, !host.isEmpty else {
            throw ParseError("'url' names no host; write postgres://USER@HOST:PORT/DATABASE")
        }
        guard let user = components.user, !user.isEmpty else {
            throw ParseError("'url' names no user; write postgres://USER@\(host)/DATABASE")
        }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else {
            throw ParseError("'url' names no database; write postgres://\(user)@\(host)/DATABASE")
        }
        let port = components.port ?? 5432
        guard (1...65535).contains(port) else { throw ParseError("'url' has port \(port); ports run from 1 to 65535") }
        var settings = PostgresStorageSettings(
            host: host,
            port: port,
            user: user.removingPercentEncoding ?? user,
            password: components.password.map { $0.removingPercentEncoding ?? $0 },
            database: database.removingPercentEncoding ?? database
        )
        var hasRootCertificate = false
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let mode = TLSMode(rawValue: item.value ?? "") else {
                    throw ParseError(
                        "'url' has sslmode=\(item.value ?? ""); use one of \(TLSMode.allCases.map(\.rawValue).joined(separator: ", "))"
                    )
                }
                settings.tls = mode
            case "sslrootcert":
                guard let path = item.value, !path.isEmpty else { throw ParseError("'url' has an empty sslrootcert; name the CA file") }
                settings.rootCertificate = resolvePath(path)
                hasRootCertificate = true
            case "connect_timeout":
                guard let seconds = item.value.flatMap(Int.init), (1...300).contains(seconds) else {
                    throw ParseError("'url' has connect_timeout=\(item.value ?? ""); use whole seconds from 1 to 300")
                }
                settings.connectTimeout = .seconds(seconds)
            default:
                throw ParseError(
                    "'url' has the parameter '\(item.name)', which KeyBroker does not know; known: sslmode, sslrootcert, connect_timeout"
                )
            }
        }
        // As libpq: `require` with a CA file checks the certificate against it.
        if settings.tls == .require, hasRootCertificate { settings.tls = .verifyCA }
        return settings
    }

    /// Whether the server's certificate is checked (`verify-ca`, `verify-full`).
    public var verifiesServer: Bool { tls == .verifyCA || tls == .verifyFull }

    /// Whether `host` is this machine (where an unchecked connection crosses no network).
    public var isLoopback: Bool { ["localhost", "127.0.0.1", "::1", "[::1]"].contains(host) || host.hasPrefix("127.") }

    /// A problem with a URL.
    public struct ParseError: Error, Sendable {
        public let message: String
        init(_ message: String) { self.message = message }
    }

    /// Where, without the password.
    public var description: String { "postgres://\(user)@\(host):\(port)/\(database) (sslmode \(tls.rawValue))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror {
        Mirror(self, children: ["url": description, "maxConnections": maxConnections, "connectTimeout": connectTimeout])
    }
}

/// `storage.sqlite`.
public struct SQLiteStorageSettings: Sendable, Hashable {
    /// The database file.
    public let path: URL
    /// Whether a missing database file is created. An existing empty or foreign file is
    /// refused either way, so that a volume that failed to mount is never taken for a new
    /// deployment.
    public let createIfMissing: Bool

    /// Creates the settings.
    public init(path: URL, createIfMissing: Bool) {
        self.path = path
        self.createIfMissing = createIfMissing
    }
}
