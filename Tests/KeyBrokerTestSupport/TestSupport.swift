import AWSKMSKeystore
import Foundation
import KeyBroker
import KeyBrokerPlugins
import KeyBrokerSQLite
import KeyBrokerServer
import LocalFileKeystore
import Logging
import NoneKeystore
import Synchronization
import Testing

/// A directory under the system temp directory, removed when the test's scope ends.
final class TemporaryDirectory: Sendable {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("keybroker-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    /// Writes `text` to `name` and returns its path.
    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let file = url.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }
}

enum Fixtures {
    /// The registry of the built-in plugins plus, where asked, test keystores.
    static func registry(including extra: [any KeystorePlugin.Type] = []) -> KeystoreRegistry {
        // A test keystore claiming a built-in type is a bug in the test: the empty registry
        // then fails every configuration that test loads.
        (try? BuiltInKeystores.registry(adding: extra)) ?? KeystoreRegistry()
    }

    static func loader(environment: [String: String] = [:], extra: [any KeystorePlugin.Type] = []) -> ConfigLoader {
        ConfigLoader(registry: registry(including: extra), sections: KeyBrokerServer.configSections, environment: environment)
    }

    /// A configuration with two local-file keystores (`local`, `other`) and a `none` one,
    /// small keys for speed.
    static func config(defaultKeystore: String = "local", organizations: String = "{}", extraKeystores: String = "") -> String {
        """
        storage:
          sqlite:
            path: data/keybroker.sqlite
        keystores:
          local:
            type: local-file
            path: data/master.key
            createIfMissing: true
          other:
            type: local-file
            path: data/other.key
            createIfMissing: true
          plain:
            type: none
        \(extraKeystores)
        defaults:
          keystore: \(defaultKeystore)
          rotation: monthly
          keyPairSpec: RSA_2048
        organizations: \(organizations)
        """
    }

    /// Loads `yaml` from a file in `directory` and opens a broker on it.
    static func broker(
        _ yaml: String,
        in directory: TemporaryDirectory,
        file: String = "keybroker.yaml",
        extra: [any KeystorePlugin.Type] = [],
        now: @escaping @Sendable () -> Date = { Date() }
    ) async throws -> Broker {
        let path = try directory.write(file, yaml)
        let loaded = try loader(extra: extra).load(path: path)
        guard case .sqlite(let settings) = loaded.config.storage else { fatalError() }
        return try await Broker.open(loaded, store: try SQLiteKeyPairStore(settings), now: now)
    }

    static func org(_ value: String) -> OrganizationID { OrganizationID(value)! }

    /// A fresh random 32-byte data key.
    static func dataKey() -> Data { Data((0..<32).map { _ in UInt8.random(in: 0...255) }) }
}

/// The package root, found from this file's path.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// Waits until `condition` holds, checking every 20 ms, and records an issue after `seconds`.
func waitFor(seconds: Double = 10, _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("condition not met within \(seconds) s")
            return
        }
        try await Task.sleep(for: .milliseconds(20))
    }
}

/// A value shared by concurrent test tasks.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: Value) { mutex = Mutex(value) }

    var value: Value { mutex.withLock { $0 } }

    func update(_ body: (inout Value) -> Void) { mutex.withLock { body(&$0) } }
}

/// Runs blocking work (a process started and waited for, `Thread.sleep`) on a thread of its
/// own: on the cooperative pool it would starve the in-process servers of the tests running
/// beside it (2 cores: 2 threads) for as long as it blocks.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
    }
}
