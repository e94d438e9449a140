/// The keystore plugins a process knows, by `type`.
///
/// A value, not a global: the executable builds one at start and hands it to the
/// configuration loader, and tests build their own.
public struct KeystoreRegistry: Sendable {
    private var plugins: [String: any KeystorePlugin.Type] = [:]

    /// An empty registry.
    public init() {}

    /// Registers a plugin under its ``KeystorePlugin/type``.
    /// - Throws: ``RegistryError`` when another plugin already has that type.
    public mutating func register(_ plugin: any KeystorePlugin.Type) throws(RegistryError) {
        guard plugins[plugin.type] == nil else { throw RegistryError(duplicateType: plugin.type) }
        plugins[plugin.type] = plugin
    }

    /// The registered types, sorted.
    public var types: [String] { plugins.keys.sorted() }

    /// The plugin for `type`, if registered.
    public func plugin(for type: String) -> (any KeystorePlugin.Type)? { plugins[type] }
}
