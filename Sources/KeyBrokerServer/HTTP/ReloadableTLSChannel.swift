public import HummingbirdCore
public import Logging
public import NIOCore
public import NIOSSL

/// HTTP/1.1 over TLS, with the TLS context chosen for each new connection.
///
/// HummingbirdTLS's `TLSChannel` builds one `NIOSSLContext` when the server starts and keeps it
/// for the server's life; a certificate renewed on disk would need a restart, which drops every
/// open connection. This channel asks `context` for each accepted connection instead, so a
/// SIGHUP reload that builds a new context (new certificate, key or client CA) applies to the
/// next handshake, while connections already open finish on the context they began with
/// (each `NIOSSLHandler` holds its own). Otherwise it does what `TLSChannel` does: the TLS
/// handler first, then the base channel's pipeline.
public struct ReloadableTLSChannel<Base: HTTPChannelHandler>: HTTPChannelHandler {
    public typealias Value = Base.Value

    let base: Base
    let context: @Sendable () -> NIOSSLContext

    /// Wraps `base`, reading the TLS context from `context` for each connection.
    public init(_ base: Base, context: @escaping @Sendable () -> NIOSSLContext) {
        self.base = base
        self.context = context
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let context = context()
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    public func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }

    public var responder: HTTPChannelHandler.Responder { base.responder }
}

extension HTTPServerBuilder {
    /// HTTP/1.1 over TLS with a context read for each new connection (``ReloadableTLSChannel``).
    public static func reloadableTLS(context: @escaping @Sendable () -> NIOSSLContext) -> HTTPServerBuilder {
        .init { responder in
            ReloadableTLSChannel(HTTP1Channel(responder: responder), context: context)
        }
    }
}
