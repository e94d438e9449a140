// swift-tools-version: 6.1
import PackageDescription

/// Strict concurrency is the Swift 6 language mode default; the settings below keep
/// existentials spelled out (`any Keystore`) everywhere.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "KeyBroker",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "KeyBroker", targets: ["KeyBroker"]),
        .library(name: "NoneKeystore", targets: ["NoneKeystore"]),
        .library(name: "LocalFileKeystore", targets: ["LocalFileKeystore"]),
        .library(name: "AWSKMSKeystore", targets: ["AWSKMSKeystore"]),
        .executable(name: "keybroker", targets: ["keybroker"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto", exact: "4.5.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        // The core: model, keystore contract and registry, configuration, storage, broker.
        // No HTTP and no concrete keystore live here.
        .target(
            name: "KeyBroker",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
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
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Plugins/AWSKMSKeystore",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "keybroker",
            dependencies: [
                "KeyBroker",
                "NoneKeystore",
                "LocalFileKeystore",
                "AWSKMSKeystore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "KeyBrokerTests",
            dependencies: [
                "KeyBroker",
                "NoneKeystore",
                "LocalFileKeystore",
                "AWSKMSKeystore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strictSettings
        ),
    ]
)
