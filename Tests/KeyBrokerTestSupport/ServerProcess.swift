import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Synchronization

/// The built `keybroker serve`, run as a child process on a free loopback port.
final class ServerProcess: Sendable {
    let process: Process
    let port: Int
    private let output: LockedText

    /// Starts the server in `directory` with `config/keybroker.yaml` and waits until it listens.
    init(directory: URL, environment: [String: String] = [:]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ProcessRunner.keybroker)
        process.arguments = ["serve"]
        process.currentDirectoryURL = directory
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        let output = LockedText()
        let reader = pipe.fileHandleForReading
        Thread.detachNewThread {
            while true {
                let data = reader.availableData
                if data.isEmpty { break }
                output.append(String(decoding: data, as: UTF8.self))
            }
        }
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        var port: Int?
        while port == nil, Date() < deadline, process.isRunning {
            port = output.read { text in
                (text.range(of: "listening on http://127.0.0.1:") ?? text.range(of: "listening on https://127.0.0.1:")).flatMap { range in
                    Int(text[range.upperBound...].prefix { $0.isNumber })
                }
            }
            if port == nil { Thread.sleep(forTimeInterval: 0.05) }
        }
        guard let port else {
            process.terminate()
            throw TestServerError(description: "keybroker serve did not start: \(output.read { $0 })")
        }
        self.process = process
        self.port = port
        self.output = output
    }

    var log: String { output.read { $0 } }

    /// The process's resident memory, from `/proc` (Linux).
    var residentBytes: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kib = Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "")
        else { return nil }
        return kib * 1024
    }

    /// Sends SIGTERM and waits for the exit status.
    func stop(timeout: TimeInterval = 15) -> Int32? {
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        guard !process.isRunning else {
            process.interrupt()
            kill(process.processIdentifier, SIGKILL)
            return nil
        }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// The client for every test server: enough connections per host that a test's own
    /// burst of requests never queues its probes behind them (AsyncHTTPClient's default is 8).
    static let client = HTTPClient(
        eventLoopGroupProvider: .singleton,
        configuration: HTTPClient.Configuration(
            connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 128)
        )
    )

    /// One request to the server; returns status and body.
    func request(
        _ method: HTTPMethod,
        _ path: String,
        token: String? = nil,
        json: Any? = nil,
        timeout: TimeAmount = .seconds(30),
        client: HTTPClient = ServerProcess.client
    ) async throws -> (status: Int, body: Data) {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: json)))
        }
        let response = try await client.execute(request, timeout: timeout)
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), Data(buffer: body))
    }
}

/// Text appended by one thread and read by others.
final class LockedText: Sendable {
    private let text = Mutex("")
    func append(_ more: String) { text.withLock { $0 += more } }
    func read<T>(_ body: (String) -> T) -> T { text.withLock { body($0) } }
}
