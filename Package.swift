// swift-tools-version: 6.1
import PackageDescription

/// Strict concurrency is the Swift 6 language mode default; the settings below keep
/// existentials spelled out (`any Keystore`) everywhere.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "KeyBroker",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "KeyBrokerModel", targets: ["KeyBrokerModel"]),
        .library(name: "KeyBroker", targets: ["KeyBroker"]),
        .library(name: "KeyBrokerSQLite", targets: ["KeyBrokerSQLite"]),
        .library(name: "KeyBrokerPostgres", targets: ["KeyBrokerPostgres"]),
        .library(name: "KeyBrokerTesting", targets: ["KeyBrokerTesting"]),
        .library(name: "NoneKeystore", targets: ["NoneKeystore"]),
        .library(name: "LocalFileKeystore", targets: ["LocalFileKeystore"]),
        .library(name: "AWSKMSKeystore", targets: ["AWSKMSKeystore"]),
        .library(name: "KeyBrokerServer", targets: ["KeyBrokerServer"]),
        .library(name: "KeyBrokerPlugins", targets: ["KeyBrokerPlugins"]),
        .executable(name: "keybroker", targets: ["keybroker"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto", exact: "4.5.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
    ],
    targets: [
        // The model: organizations, key pairs, RSA key material and the recording format. No
        // configuration, no storage, no I/O beyond the recording files: a recording service
        // links this alone.
        .target(
            name: "KeyBrokerModel",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // The core: keystore contract and registry, configuration, the store contract with its
        // in-memory reference store, the broker. No HTTP, no database, no concrete keystore.
        .target(
            name: "KeyBroker",
            dependencies: [
                "KeyBrokerModel",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strictSettings
        ),
        // The SQLite store, through GRDB.
        .target(
            name: "KeyBrokerSQLite",
            dependencies: [
                "KeyBroker",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strictSettings
        ),
        // The PostgreSQL store, through PostgresNIO: several replicas share one database.
        .target(
            name: "KeyBrokerPostgres",
            dependencies: [
                "KeyBroker",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // The conformance suites of the store and keystore contracts, for KeyBroker's own
        // stores and plugins and for third-party ones.
        .target(
            name: "KeyBrokerTesting",
            dependencies: ["KeyBroker"],
            swiftSettings: strictSettings
        ),
        // Keystore plugins: each depends on the core (and libraries), never on another plugin.
        .target(
            name: "NoneKeystore",
            dependencies: ["KeyBroker"],
            path: "Plugins/NoneKeystore",
            swiftSettings: strictSettings
        ),
        .target(
            name: "LocalFileKeystore",
            dependencies: [
                "KeyBroker",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Plugins/LocalFileKeystore",
            swiftSettings: strictSettings
        ),
        .target(
            name: "AWSKMSKeystore",
            dependencies: [
                "KeyBroker",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            path: "Plugins/AWSKMSKeystore",
            swiftSettings: strictSettings
        ),
        // The list of the keystore plugins KeyBroker ships (the executable and the tests use it).
        .target(
            name: "KeyBrokerPlugins",
            dependencies: ["KeyBroker", "NoneKeystore", "LocalFileKeystore", "AWSKMSKeystore"],
            swiftSettings: strictSettings
        ),
        // HTTP: probes, admin and data API, auth, scheduler, metrics, audit. No concrete keystore.
        .target(
            name: "KeyBrokerServer",
            dependencies: [
                "KeyBroker",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdAuth", package: "hummingbird-auth"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOFoundationEssentialsCompat", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "keybroker",
            dependencies: [
                "KeyBroker",
                "KeyBrokerSQLite",
                "KeyBrokerPostgres",
                "NoneKeystore",
                "LocalFileKeystore",
                "AWSKMSKeystore",
                "KeyBrokerServer",
                "KeyBrokerPlugins",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // benchmarks/run's reference: the unwrap's RSA decryption alone, in a tight loop.
        .executableTarget(
            name: "rsa-reference",
            dependencies: ["KeyBrokerModel"],
            path: "benchmarks/RSAReference",
            swiftSettings: strictSettings
        ),
        // benchmarks/public-key's reference: the framework's limit, a bare Hummingbird app
        // answering a constant /readyz.
        .executableTarget(
            name: "bare-hummingbird",
            dependencies: [.product(name: "Hummingbird", package: "hummingbird")],
            path: "benchmarks/BareHummingbird",
            swiftSettings: strictSettings
        ),
        // benchmarks/public-key: what the public-key cache holds in memory at N organizations.
        .executableTarget(
            name: "public-key-cache-memory",
            dependencies: [
                "KeyBroker",
                "KeyBrokerServer",
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "benchmarks/PublicKeyCacheMemory",
            swiftSettings: strictSettings
        ),
        // What the test targets share: fixtures, the KMS test servers, the server process
        // runner, test keystores (as HummingbirdTesting serves Hummingbird's tests).
        .target(
            name: "KeyBrokerTestSupport",
            dependencies: [
                "KeyBroker",
                "KeyBrokerSQLite",
                "KeyBrokerPostgres",
                "KeyBrokerServer",
                "KeyBrokerPlugins",
                "NoneKeystore",
                "LocalFileKeystore",
                "AWSKMSKeystore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOFoundationEssentialsCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Tests/KeyBrokerTestSupport",
            swiftSettings: strictSettings
        ),
        // The core: broker, configuration, registry, the store and keystore conformance suites.
        .testTarget(
            name: "KeyBrokerTests",
            dependencies: [
                "KeyBroker",
                "KeyBrokerSQLite",
                "KeyBrokerTesting",
                "KeyBrokerTestSupport",
                "NoneKeystore",
                "LocalFileKeystore",
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strictSettings
        ),
        // Each store and each plugin: its own tests and the shared conformance suite.
        .testTarget(
            name: "KeyBrokerSQLiteTests",
            dependencies: [
                "KeyBroker", "KeyBrokerSQLite", "KeyBrokerTesting", "KeyBrokerTestSupport", .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strictSettings
        ),
        // The PostgreSQL store against a real cluster the tests start (initdb in a temp dir).
        .testTarget(
            name: "KeyBrokerPostgresTests",
            dependencies: ["KeyBroker", "KeyBrokerPostgres", "KeyBrokerTesting", "KeyBrokerTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "NoneKeystoreTests",
            dependencies: ["KeyBroker", "NoneKeystore", "KeyBrokerTesting"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "LocalFileKeystoreTests",
            dependencies: ["KeyBroker", "LocalFileKeystore", "KeyBrokerTesting", "KeyBrokerTestSupport"],
            swiftSettings: strictSettings
        ),
        // Against moto (signatures checked) and LocalStack, and the fault proxy in front of them.
        .testTarget(
            name: "AWSKMSKeystoreTests",
            dependencies: [
                "KeyBroker",
                "AWSKMSKeystore",
                "KeyBrokerTesting",
                "KeyBrokerTestSupport",
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // The server in process: API, probes, auth, scheduler, durability, isolation, fail-closed.
        .testTarget(
            name: "KeyBrokerServerTests",
            dependencies: [
                "KeyBroker",
                "KeyBrokerSQLite",
                "KeyBrokerServer",
                "KeyBrokerTestSupport",
                "KeyBrokerTesting",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strictSettings
        ),
        // The built executable, end to end: the CLI, keybroker serve over a socket, OpenSSL interop.
        .testTarget(
            name: "keybrokerTests",
            dependencies: [
                "KeyBroker",
                "KeyBrokerSQLite",
                "KeyBrokerServer",
                "KeyBrokerTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strictSettings
        ),
    ]
)
