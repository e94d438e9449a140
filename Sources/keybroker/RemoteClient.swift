import ArgumentParser
import AsyncHTTPClient
import Foundation
import KeyBrokerServer
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// `--server URL`: talk to a running `keybroker serve` instead of opening the store. The
/// token comes from `KEYBROKER_TOKEN` only, never from the command line, where `ps` would
/// show it.
struct RemoteOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("A running KeyBroker server (token from KEYBROKER_TOKEN).", valueName: "url"))
    var server: String?

    /// A client when `--server` was given.
    func client() throws -> RemoteClient? {
        guard let server else { return nil }
        guard let url = URL(string: server), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw CLIFailure(
                ["error: --server must be an http(s) URL such as http://127.0.0.1:8080, found '\(server)'"],
                exitCode: CLIFailure.usageExitCode
            )
        }
        let loopback = ["127.0.0.1", "localhost", "::1", "[::1]"].contains(url.host ?? "")
        guard url.scheme == "https" || loopback else {
            throw CLIFailure(
                [
                    "error: --server must use https unless it is on this host (127.0.0.1, localhost, ::1): the token and unwrapped keys would cross the network in clear"
                ],
                exitCode: CLIFailure.usageExitCode
            )
        }
        guard let token = ProcessInfo.processInfo.environment["KEYBROKER_TOKEN"], !token.isEmpty else {
            throw CLIFailure(
                ["error: --server needs a token in the KEYBROKER_TOKEN environment variable (create one with: keybroker token create)"],
                exitCode: CLIFailure.usageExitCode
            )
        }
        return RemoteClient(base: server.hasSuffix("/") ? String(server.dropLast()) : server, token: token)
    }
}

struct RemoteClient {
    let base: String
    let token: String

    func get<T: Decodable>(_ path: String, as: T.Type = T.self) async throws -> T {
        try await send(.GET, path, body: nil)
    }

    func post<T: Decodable>(_ path: String, body: Data? = nil, as: T.Type = T.self) async throws -> T {
        try await send(.POST, path, body: body)
    }

    typealias Method = HTTPMethod

    func send<T: Decodable>(_ method: HTTPMethod, _ path: String, body: Data?, headers: [String: String] = [:]) async throws -> T {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: body))
        }
        let data: Data
        let status: Int
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
            status = Int(response.status.code)
            data = Data(buffer: try await response.body.collect(upTo: 16 << 20))
        } catch {
            throw CLIFailure(["error: cannot reach the KeyBroker server at \(base): \(error)"], exitCode: CLIFailure.operationExitCode)
        }
        guard (200..<300).contains(status) else {
            let detail = try? APIJSON.decoder.decode(ErrorBody.self, from: data).error
            var line = "error: server answered \(status)"
            if let detail {
                line += " \(detail.code): \(detail.message)"
                if let backend = detail.backend { line += " [\(backend.type): \(backend.message)]" }
            }
            var lines = [line]
            lines += detail?.diagnostics?.map { "\($0.file ?? "?"):\($0.line ?? 0):\($0.column ?? 0): \($0.severity): \($0.message)" } ?? []
            throw CLIFailure(lines, exitCode: status == 400 ? CLIFailure.usageExitCode : CLIFailure.operationExitCode)
        }
        do {
            return try APIJSON.decoder.decode(T.self, from: data)
        } catch {
            throw CLIFailure(
                ["error: the server's answer to \(path) is not what this version of keybroker expects (\(error))"],
                exitCode: CLIFailure.operationExitCode
            )
        }
    }
}
