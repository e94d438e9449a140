/// `POST /v1/orgs/{org}/unwrap` request.
public struct UnwrapRequest: Codable, Sendable {
    public let keyPairId: String
    public let wrappedKey: String

    /// Creates a request.
    public init(keyPairId: String, wrappedKey: String) {
        self.keyPairId = keyPairId
        self.wrappedKey = wrappedKey
    }
}
