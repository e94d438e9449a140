public import Hummingbird
public import KeyBroker
public import NIOCore

/// The context of every request. ``KeyBrokerResponder`` takes the runtime's snapshot when the
/// request arrives; authentication, authorization, the body limit and the handler all read
/// that one snapshot, so a request is served entirely by the configuration it started under.
public struct KeyBrokerRequestContext: KeyBrokerContext, RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var identity: Principal?
    /// Set by ``KeyBrokerResponder`` before any middleware runs.
    var takenSnapshot: RuntimeSnapshot?
    /// The connection, for its TLS client certificate.
    public let channel: any Channel

    public init(source: Source) {
        coreContext = .init(source: source)
        channel = source.channel
        identity = nil
        takenSnapshot = nil
    }

    public var snapshot: RuntimeSnapshot {
        get throws {
            // Never nil behind KeyBrokerResponder; a router driven without it is a misuse.
            guard let takenSnapshot else { throw APIError(.internalServerError, "internal", "internal error; see the server log") }
            return takenSnapshot
        }
    }

    public var organization: OrganizationID? { nil }
}
