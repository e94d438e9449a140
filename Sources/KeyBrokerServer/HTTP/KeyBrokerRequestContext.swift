public import Hummingbird
public import HummingbirdAuth
public import KeyBroker

/// What every KeyBroker handler needs from its request: the runtime as it stood when the
/// request began, and who made it.
public protocol KeyBrokerContext: AuthRequestContext<Principal> {
    /// The broker and tokens in force when the request began; a reload during the request
    /// does not change them.
    var snapshot: RuntimeSnapshot { get throws }
    /// The organization the route acts for, or `nil` for server-wide routes.
    var organization: OrganizationID? { get }
}

/// The context of every request. ``KeyBrokerResponder`` takes the runtime's snapshot when the
/// request arrives; authentication, authorization, the body limit and the handler all read
/// that one snapshot, so a request is served entirely by the configuration it started under.
public struct KeyBrokerRequestContext: KeyBrokerContext, RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var identity: Principal?
    /// Set by ``KeyBrokerResponder`` before any middleware runs.
    var takenSnapshot: RuntimeSnapshot?

    public init(source: Source) {
        coreContext = .init(source: source)
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

extension KeyBrokerContext {
    /// The body limit of the request's configuration (`server.maxRequestBytes`).
    public var maxUploadSize: Int { (try? snapshot.maxRequestBytes) ?? ServerSettings.defaultValue.maxRequestBytes }
    /// Request bodies in the API's error shape.
    public var requestDecoder: APIRequestDecoder { APIRequestDecoder() }
    /// JSON answers with `Cache-Control: no-store`.
    public var responseEncoder: APIResponseEncoder { APIResponseEncoder() }
}
