import Foundation

/// Why a key pair was created.
public enum KeyPairReason: String, CaseIterable, Sendable, CustomStringConvertible {
    /// The organization's first pair.
    case initial
    /// The rotation cadence came due.
    case scheduled
    /// An operator asked for a new key now.
    case manual
    /// The organization's keystore changed in the configuration.
    case configChange = "config-change"

    public var description: String { rawValue }
}
