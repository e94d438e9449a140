import HTTPTypes
public import KeyBroker

/// What one request is served with: the broker and the tokens of one configuration, taken
/// together when the request arrives (``BrokerRuntime/snapshot``).
public struct RuntimeSnapshot: Sendable {
    /// The broker in force.
    public let broker: Broker
    /// The tokens of the same configuration.
    public let authenticator: TokenAuthenticator
    /// The client certificate identities of the same configuration.
    public let clients: ClientCertificateAuthenticator
    /// The configuration's `server:` section, read once here rather than looked up (a
    /// dictionary lookup and a dynamic cast) by each request.
    public let server: ServerSettings
    /// The `Cache-Control` of current public-key answers (`server.publicKeyMaxAge`).
    let publicKeyCacheControl: HTTPField

    /// The snapshot of a configuration: its broker, its tokens and its clients.
    init(broker: Broker) {
        self.broker = broker
        authenticator = TokenAuthenticator(broker.config.auth)
        clients = ClientCertificateAuthenticator(broker.config.auth)
        server = broker.config.server
        publicKeyCacheControl = PublicKeyResponses.cacheControl(maxAge: server.publicKeyMaxAge)
    }

    /// The body limit of that configuration.
    var maxRequestBytes: Int { server.maxRequestBytes }
}
