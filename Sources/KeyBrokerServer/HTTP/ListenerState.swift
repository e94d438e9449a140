public import Foundation
import NIOConcurrencyHelpers
import NIOSSL

/// What the listener was bound with, which a reload cannot change (`listen`, TLS on or off
/// take a restart), and the TLS settings its new connections use now.
public final class ListenerState: Sendable {
    /// The `server` settings at start.
    public let started: ServerSettings
    private let lastTLS: NIOLockedValueBox<TLSSettings?>

    public init(started: ServerSettings) {
        self.started = started
        lastTLS = NIOLockedValueBox(started.tls)
    }

    /// The TLS settings new connections use (and status reports).
    var tlsInUse: TLSSettings? { lastTLS.withLockedValue { $0 } }

    /// After a reload: new connections take `settings` when the listener speaks TLS and they
    /// differ from those in use (a reload that removed `server.tls` keeps the last ones: that
    /// takes a restart). Returns whether they were taken.
    func adopt(_ settings: TLSSettings?) -> Bool {
        guard started.tls != nil, let settings else { return false }
        return lastTLS.withLockedValue { last in
            guard settings != last else { return false }
            last = settings
            return true
        }
    }

    /// What a reload to `settings` cannot apply until a restart.
    public func restartNeeded(for settings: ServerSettings) -> [String] {
        var notes: [String] = []
        if settings.host != started.host || settings.port != started.port {
            notes.append(
                "server.listen changed to \(settings.host):\(settings.port); the listener stays on \(started.host):\(started.port) until a restart"
            )
        }
        if (settings.tls == nil) != (started.tls == nil) {
            notes.append(
                "server.tls was \(settings.tls == nil ? "removed" : "added"); that takes a restart, and until then the listener keeps \(started.tls == nil ? "plain HTTP" : "TLS with the last certificate in force")"
            )
        }
        return notes
    }

    /// What an operator should fix about the listener: plain HTTP where the network reaches
    /// it, a TLS certificate that ends within 30 days.
    public func warnings(at time: Date) -> [String] {
        var warnings: [String] = []
        if started.plaintextOnNetwork {
            warnings.append(
                "plain HTTP on \(started.host):\(started.port), which the network can reach (server.allowPlaintext: true): tokens and unwrapped data keys cross it in the clear unless a TLS proxy on this host is the only way in; set server.tls and restart"
            )
        }
        if let tls = tlsInUse {
            let left = tls.notValidAfter.timeIntervalSince(time)
            if left <= 0 {
                warnings.append(tls.expiredMessage(at: time) ?? "")
            } else if left < 30 * 86400 {
                warnings.append(
                    "the TLS certificate '\(tls.certificate.path)' expires on \(tls.notValidAfter.formatted(.iso8601)) (in \(Int(left / 86400)) days); install a renewed certificate and key, then reload (SIGHUP)"
                )
            }
        }
        return warnings
    }
}
