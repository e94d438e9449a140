/// `POST /v1/orgs/{org}/unwrap` response.
public struct UnwrapResponse: Codable, Sendable {
    public let dataKey: String
}
