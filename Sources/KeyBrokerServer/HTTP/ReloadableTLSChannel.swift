import Foundation
public import HummingbirdCore
public import Logging
public import NIOCore
import NIOSSL

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
    let settings: @Sendable () -> TLSSettings

    /// Wraps `base`, reading the TLS settings from `settings` for each connection.
    public init(_ base: Base, settings: @escaping @Sendable () -> TLSSettings) {
        self.base = base
        self.settings = settings
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let settings = settings()
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: settings.context))
            try channel.pipeline.syncOperations.addHandler(TLSConnectionMark(clientCAFingerprint: settings.clientCAFingerprint))
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
    /// HTTP/1.1 over TLS with settings read for each new connection (``ReloadableTLSChannel``).
    public static func reloadableTLS(
        configuration: HTTP1Channel.Configuration,
        settings: @escaping @Sendable () -> TLSSettings
    ) -> HTTPServerBuilder {
        .init { responder in
            ReloadableTLSChannel(HTTP1Channel(responder: responder, configuration: configuration), settings: settings)
        }
    }
}

/// Remembers, on a TLS connection, which client CA verified its certificate: the identity of
/// a client certificate counts only while that CA is still the one in force, so replacing a
/// compromised CA takes effect on connections opened before the reload too.
final class TLSConnectionMark: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny
    /// SHA-256 of the client CA file the connection's handshake used (empty: none).
    let clientCAFingerprint: Data

    init(clientCAFingerprint: Data) {
        self.clientCAFingerprint = clientCAFingerprint
    }

    /// The connection's verified client certificate and the mark, read on its event loop.
    static func peer(of channel: any Channel) async -> (certificate: NIOSSLCertificate, clientCAFingerprint: Data)? {
        try? await channel.eventLoop.submit { () -> (NIOSSLCertificate, Data)? in
            let operations = channel.pipeline.syncOperations
            guard let certificate = try operations.nioSSL_peerCertificate() else { return nil }
            let mark = try operations.handler(type: TLSConnectionMark.self)
            return (certificate, mark.clientCAFingerprint)
        }.get()
    }
}
