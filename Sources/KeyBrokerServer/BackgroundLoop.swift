import ServiceLifecycle

/// A background task as a ServiceLifecycle service, ended by graceful shutdown.
struct BackgroundLoop: Service {
    let name: String
    let once: Bool
    let body: @Sendable () async -> Void

    init(name: String, once: Bool = false, body: @escaping @Sendable () async -> Void) {
        self.name = name
        self.once = once
        self.body = body
    }

    func run() async {
        await cancelWhenGracefulShutdown {
            if once {
                await body()
            } else {
                while !Task.isCancelled { await body() }
            }
        }
    }
}
