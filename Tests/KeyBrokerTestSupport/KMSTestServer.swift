import Foundation
import Testing

/// A real KMS-compatible server (moto or LocalStack) started for a test on 127.0.0.1 by
/// `Tests/Support/kms_test_server.py`, and stopped (by PID) when the test releases it.
final class KMSTestServer: @unchecked Sendable {
    enum Kind: String {
        case moto, motoWithAuth, localstack
    }

    struct Info: Decodable {
        let endpoint: String
        let pid: Int32
        let region: String
        let account: String
        let accessKeyId: String
        let secretAccessKey: String
        let keyArn: String
        let aliasArn: String
    }

    let info: Info
    private let process: Process
    private let input: FileHandle
    private let output: FileHandle
    private let lock = NSLock()

    private static let script = packageRoot.appendingPathComponent("Tests/Support/kms_test_server.py").path
    static let localstackPython = packageRoot.appendingPathComponent(".build-venv/localstack/bin/python").path

    /// Whether the server can run here. In CI (`CI=true`) this is always true, so that a
    /// missing server fails the run instead of skipping silently.
    static func available(_ kind: Kind) -> Bool {
        if ProcessInfo.processInfo.environment["CI"] == "true" { return true }
        switch kind {
        case .moto, .motoWithAuth: return ProcessRunner.which("moto_server") != nil
        case .localstack: return FileManager.default.isExecutableFile(atPath: localstackPython)
        }
    }

    static let skipMessage: Comment = "KMS test server not installed: run scripts/install-test-tools (moto[server], LocalStack venv)"

    /// Which server this is.
    let kind: Kind

    init(_ kind: Kind) throws {
        self.kind = kind
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        var arguments = ["python3", Self.script]
        switch kind {
        case .moto: arguments.append("moto")
        case .motoWithAuth: arguments += ["moto", "--auth"]
        case .localstack: arguments += ["localstack", "--python", Self.localstackPython]
        }
        process.arguments = arguments
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = FileHandle.standardError
        try process.run()
        input = stdin.fileHandleForWriting
        output = stdout.fileHandleForReading
        let line = try Self.readLine(output)
        guard let data = line.data(using: .utf8), let info = try? JSONDecoder().decode(Info.self, from: data) else {
            process.terminate()
            throw TestServerError(description: "the \(kind) KMS server did not start: \(line)")
        }
        self.info = info
    }

    deinit {
        try? input.close()
        process.waitUntilExit()
    }

    /// Sends a command and returns its answer.
    @discardableResult
    func command(_ op: String, _ arguments: [String: Any] = [:]) throws -> [String: Any] {
        try lock.withLock {
            var body = arguments
            body["op"] = op
            input.write(try JSONSerialization.data(withJSONObject: body) + Data("\n".utf8))
            let line = try Self.readLine(output)
            guard let answer = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw TestServerError(description: "unexpected answer to \(op): \(line)")
            }
            if let error = answer["error"] as? String { throw TestServerError(description: "\(op) failed: \(error)") }
            return answer
        }
    }

    /// A new key; returns its ARN.
    func createKey(alias: String? = nil, multiRegion: Bool = false, region: String? = nil) throws -> String {
        var arguments: [String: Any] = ["multi_region": multiRegion]
        if let alias { arguments["alias"] = alias }
        if let region { arguments["region"] = region }
        return try command("create_key", arguments)["arn"] as! String
    }

    /// Starts the fault-injecting proxy in front of the server; returns its endpoint.
    func proxyEndpoint() throws -> String { try command("proxy")["endpoint"] as! String }

    /// What the next requests through the proxy suffer.
    func injectFaults(_ actions: [String]) throws { try command("faults", ["actions": actions]) }

    /// Every request through the proxy (of `operation`, or all) gets `mode` until it is `pass` again.
    func setMode(_ mode: String, operation: String? = nil) throws {
        var arguments: [String: Any] = ["mode": mode]
        if let operation { arguments["operation"] = operation }
        try command("mode", arguments)
    }

    /// The malformed answers the proxy can give (see `kms_test_server.py`).
    static let malformedAnswers = [
        "type:#", "type:#Foo", "type:prefixed", "no-type", "empty-400", "non-json-400", "html-502", "header-type:#",
        "ok-non-json", "ok-empty", "ok-wrong-types", "ok-bad-base64", "ok-huge", "truncated",
    ]

    /// The proxy's slow answers: a body a byte a second, and no answer at all.
    static let slowAnswers = ["trickle", "blackhole"]

    /// Requests per KMS operation the proxy has seen.
    func proxyCounts() throws -> [String: Int] { try command("counts")["counts"] as? [String: Int] ?? [:] }

    /// A keystore YAML entry for this server.
    func keystoreYAML(generation: String, endpoint: String? = nil, keyAlias: String? = nil, extra: String = "") -> String {
        """
        { type: aws-kms-symmetric, keyAlias: "\(keyAlias ?? info.aliasArn)", region: \(info.region), endpoint: "\(endpoint ?? info.endpoint)",
          generation: \(generation), accessKeyId: \(info.accessKeyId), secretAccessKey: "\(info.secretAccessKey)", keyPairSpec: RSA_2048\(extra) }
        """
    }

    private static func readLine(_ handle: FileHandle) throws -> String {
        var bytes = Data()
        while true {
            let byte = try handle.read(upToCount: 1) ?? Data()
            if byte.isEmpty { break }
            if byte.first == UInt8(ascii: "\n") { break }
            bytes.append(byte)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

struct TestServerError: Error, CustomStringConvertible {
    let description: String
}
