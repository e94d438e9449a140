import Foundation
public import KeyBroker

/// A keystore error with the backend's own code and message.
public struct KeystoreErrorView: Codable, Sendable, Equatable {
    public let kind: String
    public let message: String
    public let backendCode: String?
    public let backendMessage: String?
    public let hint: String?

    /// The kind and the backend's code only, for callers who may not see other
    /// organizations' details.
    public init(redacting error: KeystoreError) {
        kind = error.kind.description
        message = "the keystore reported \(error.kind) (details need a token for every organization)"
        backendCode = error.backendCode
        backendMessage = nil
        hint = nil
    }

    /// The view of an error.
    public init(_ error: KeystoreError) {
        kind = error.kind.description
        message = error.message
        backendCode = error.backendCode
        backendMessage = error.backendMessage
        hint = error.hint
    }
}
