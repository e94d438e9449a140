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

    /// The snapshot of a configuration: its broker, its tokens and its clients.
    init(broker: Broker) {
        self.broker = broker
        authenticator = TokenAuthenticator(broker.config.auth)
        clients = ClientCertificateAuthenticator(broker.config.auth)
    }

    /// The body limit of that configuration.
    var maxRequestBytes: Int { broker.config.server.maxRequestBytes }
}
