import Foundation
import KeyBroker

/// `GET /v1/orgs/{org}/keypairs`.
public struct KeyPairPage: Codable, Sendable {
    public let items: [KeyPairView]
    public let nextOffset: Int?
}
