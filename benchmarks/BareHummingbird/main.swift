import Hummingbird

// The framework's limit for benchmarks/public-key: a bare Hummingbird app answering a constant
// /readyz as KeyBroker's probe does, with nothing else (no snapshot, no middleware).
let port = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 8081
let body = ByteBuffer(string: #"{"status":"ok"}"#)
let router = Router()
router.get("readyz") { _, _ in
    Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"], body: .init(byteBuffer: body))
}
let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "bare"))
try await app.runService()
