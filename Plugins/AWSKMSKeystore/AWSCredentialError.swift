/// No credentials could be found, or a source is malformed.
public struct AWSCredentialError: Error, Sendable, CustomStringConvertible {
    /// What is missing or wrong, and where KeyBroker looked.
    public let description: String
}
