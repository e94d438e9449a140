/// A plugin registration that cannot work.
public struct RegistryError: Error, Sendable, CustomStringConvertible {
    /// The type that was registered twice.
    public let duplicateType: String

    public var description: String {
        "a keystore plugin of type '\(duplicateType)' is already registered; each type must be registered once"
    }
}
