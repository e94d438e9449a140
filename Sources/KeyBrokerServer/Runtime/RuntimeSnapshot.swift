public import KeyBroker

/// What one request is served with: the broker and the tokens of one configuration, taken
/// together when the request arrives (``BrokerRuntime/snapshot``).
public struct RuntimeSnapshot: Sendable {
    /// The broker in force.
    public let broker: Broker
    /// The tokens of the same configuration.
    public let authenticator: TokenAuthenticator

    /// The body limit of that configuration.
    var maxRequestBytes: Int { broker.config.server.maxRequestBytes }
}
