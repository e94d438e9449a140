import AWSKMSKeystore
public import KeyBroker
import LocalFileKeystore
import NoneKeystore

/// The keystore plugins KeyBroker ships: the one list the `keybroker` executable registers
/// and the tests load configurations with. Adding a keystore type to KeyBroker is a plugin
/// target under `Plugins/`, a dependency of this target, and one line here.
public enum BuiltInKeystores {
    /// Every built-in plugin, by type name order.
    public static let plugins: [any KeystorePlugin.Type] = [
        AWSKMSKeystorePlugin.self,
        LocalFileKeystorePlugin.self,
        NoneKeystorePlugin.self,
    ]

    /// A registry of the built-in plugins and `extra` ones (test keystores, a distribution's own).
    /// - Throws: ``RegistryError`` when two plugins claim one type name.
    public static func registry(adding extra: [any KeystorePlugin.Type] = []) throws(RegistryError) -> KeystoreRegistry {
        var registry = KeystoreRegistry()
        for plugin in plugins + extra { try registry.register(plugin) }
        return registry
    }
}
