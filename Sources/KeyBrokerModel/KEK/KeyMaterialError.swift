import Crypto
import Foundation
import _CryptoExtras

/// An error about RSA key material: parsing, generating, or using it.
public struct KeyMaterialError: Error, Sendable, CustomStringConvertible {
    /// What failed.
    public let description: String

    /// Creates an error.
    public init(_ description: String) { self.description = description }
}
