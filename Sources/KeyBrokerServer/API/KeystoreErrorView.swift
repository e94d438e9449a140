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

    /// For an organization's own key (a `tenantKeystores:` keystore): the backend's code,
    /// message and hint about that key are the tenant's to read (they say why its key refused);
    /// the broker's message, which names the server's endpoint, is not.
    public init(tenantsOwnKey error: KeystoreError) {
        let answered = error.backendAnswered
        kind = error.kind.description
        message =
            answered
            ? "your key's keystore reported \(error.kind)" + (error.backendCode.map { " (\($0))" } ?? "")
            : "the platform could not complete the call to your key (\(error.kind)); the platform's operator sees the details"
        backendCode = answered ? error.backendCode : nil
        backendMessage = answered ? error.backendMessage : nil
        hint = answered ? error.hint : nil
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
