import ArgumentParser
import AsyncHTTPClient
import Foundation
import KeyBrokerServer
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOPosix
import NIOSSL

/// `--server URL`: talk to a running `keybroker serve` instead of opening the store. The
/// token comes from `KEYBROKER_TOKEN` only, never from the command line, where `ps` would
/// show it; over https, a client certificate (`--cert`/`--key`) may stand in for it.
struct RemoteOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp("A running KeyBroker server (token from KEYBROKER_TOKEN, or --cert/--key over https).", valueName: "url")
    )
    var server: String?

    @Option(name: .long, help: ArgumentHelp("PEM CA certificates to verify the server with, instead of the system's.", valueName: "file"))
    var cacert: String?

    @Option(name: .long, help: ArgumentHelp("PEM client certificate (chain) to present over https.", valueName: "file"))
    var cert: String?

    @Option(name: .long, help: ArgumentHelp("PEM private key of --cert.", valueName: "file"))
    var key: String?

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
        guard (cert == nil) == (key == nil) else {
            throw CLIFailure(
                ["error: --cert and --key go together: the client certificate and its private key"],
                exitCode: CLIFailure.usageExitCode
            )
        }
        guard url.scheme == "https" || (cacert == nil && cert == nil) else {
            throw CLIFailure(
                ["error: --cacert, --cert and --key apply to https only; use --server https://…"],
                exitCode: CLIFailure.usageExitCode
            )
        }
        let token = ProcessInfo.processInfo.environment["KEYBROKER_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        guard token != nil || cert != nil else {
            throw CLIFailure(
                [
                    "error: --server needs a token in the KEYBROKER_TOKEN environment variable (create one with: keybroker token create), or a client certificate (--cert/--key) over https"
                ],
                exitCode: CLIFailure.usageExitCode
            )
        }
        return RemoteClient(base: server.hasSuffix("/") ? String(server.dropLast()) : server, token: token, tls: try tlsConfiguration())
    }

    /// The TLS settings of `--cacert`, `--cert` and `--key`, or `nil` for the defaults
    /// (the system's CAs, no client certificate). Certificates are always verified.
    private func tlsConfiguration() throws -> TLSConfiguration? {
        guard cacert != nil || cert != nil else { return nil }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let cacert {
            do {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(cacert))
            } catch {
                throw CLIFailure(
                    ["error: cannot read CA certificates from --cacert '\(cacert)': \(error)"],
                    exitCode: CLIFailure.usageExitCode
                )
            }
        }
        if let cert, let key {
            do {
                configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }
            } catch {
                throw CLIFailure(
                    ["error: cannot read the client certificate --cert '\(cert)': \(error)"],
                    exitCode: CLIFailure.usageExitCode
                )
            }
            do {
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            } catch {
                throw CLIFailure(
                    ["error: cannot read the private key --key '\(key)' (an unencrypted PEM key is needed): \(error)"],
                    exitCode: CLIFailure.usageExitCode
                )
            }
        }
        return configuration
    }
}

struct RemoteClient {
    let base: String
    /// The bearer token; `nil` when a client certificate is the identity.
    let token: String?
    /// TLS settings beyond the defaults (`--cacert`, `--cert`, `--key`).
    let tls: TLSConfiguration?

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
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: body))
        }
        let data: Data
        let status: Int
        // A client of its own for custom TLS settings (one call, then shut down); the shared
        // one otherwise.
        let client = tls.map {
            HTTPClient(
                eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
                configuration: .init(tlsConfiguration: $0, redirectConfiguration: .disallow)
            )
        }
        do {
            let response = try await (client ?? HTTPClient.shared).execute(request, timeout: .seconds(60))
            status = Int(response.status.code)
            data = Data(buffer: try await response.body.collect(upTo: 16 << 20))
            try? await client?.shutdown()
        } catch {
            try? await client?.shutdown()
            var line = "error: cannot reach the KeyBroker server at \(base): \(error)"
            if String(describing: error).contains("CERTIFICATE_VERIFY_FAILED") || (error as? NIOSSLExtraError) == .failedToValidateHostname
            {
                line +=
                    " (TLS failed: pass --cacert with the CA that issued the server's certificate; a server that asks for a client certificate also needs --cert and --key)"
            }
            throw CLIFailure([line], exitCode: CLIFailure.operationExitCode)
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
