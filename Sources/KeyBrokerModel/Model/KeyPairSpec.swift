/// The kind of key-encryption key pair, named as AWS KMS names its RSA data-key-pair specs.
public enum KeyPairSpec: String, CaseIterable, Sendable, CustomStringConvertible {
    case rsa2048 = "RSA_2048"
    case rsa3072 = "RSA_3072"
    case rsa4096 = "RSA_4096"

    /// The default spec: RSA-3072 gives 128-bit security, matching AES-256-GCM data keys
    /// better than RSA-2048 (112-bit) at less than half of RSA-4096's decryption cost.
    public static let `default` = KeyPairSpec.rsa3072

    /// The modulus size in bits.
    public var bits: Int {
        switch self {
        case .rsa2048: 2048
        case .rsa3072: 3072
        case .rsa4096: 4096
        }
    }

    public var description: String { rawValue }

    /// The spec names, for error messages.
    public static var allowedValues: String { allCases.map(\.rawValue).joined(separator: ", ") }
}
