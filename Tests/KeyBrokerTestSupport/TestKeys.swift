import KeyBroker

/// One RSA key per test process, for records that need a real public key.
enum TestKeys {
    private static let shared = Result { try PrivateKeyMaterial(generating: .rsa2048) }

    static func rsa2048() throws -> PrivateKeyMaterial { try shared.get() }
}
