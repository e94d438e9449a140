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

extension KeyBrokerContext {
    /// The body limit of the request's configuration (`server.maxRequestBytes`).
    public var maxUploadSize: Int { (try? snapshot.maxRequestBytes) ?? ServerSettings.defaultValue.maxRequestBytes }
    /// Request bodies in the API's error shape.
    public var requestDecoder: APIRequestDecoder { APIRequestDecoder() }
    /// JSON answers with `Cache-Control: no-store`.
    public var responseEncoder: APIResponseEncoder { APIResponseEncoder() }
}
