/// Supplies credentials for each request. One pluggable type: instance and container
/// roles can be added as further providers.
public protocol AWSCredentialProvider: Sendable {
    /// The credentials to sign the next request with.
    func credentials() throws(AWSCredentialError) -> AWSCredentials
}
