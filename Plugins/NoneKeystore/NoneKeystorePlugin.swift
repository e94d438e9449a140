public import KeyBroker

/// The `none` keystore plugin: private keys are stored *unwrapped*, for development and for
/// organizations that opted out of key wrapping.
///
/// The blob still records the encryption context and refuses to open under another one,
/// so the broker's organization binding behaves the same in every keystore — but that is a
/// consistency check, not protection: anyone who reads the database reads the keys.
public enum NoneKeystorePlugin: KeystorePlugin {
    public static let type = "none"
    public static let storesPlaintextPrivateKeys = true

    public static func make(name: String, settings: ConfigMapping, context: PluginContext) -> (any Keystore)? {
        NoneKeystore(name: name)
    }
}
