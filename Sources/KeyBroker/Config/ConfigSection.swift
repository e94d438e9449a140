/// A top-level section of the configuration file that a layer outside the core reads, as
/// plugins read their keystore entries: the server reads `server:`, `auth:`, `scheduler:` and
/// `audit:` itself, next to the code that uses them (the pattern of Hummingbird's
/// `ApplicationConfiguration(reader:)`). The loader takes the sections it should know, so
/// that its unknown-key and `file:line:column` rules hold for them too.
public protocol ConfigSection: Sendable, Hashable {
    /// The top-level key (`server`).
    static var key: String { get }
    /// The settings when the section is absent.
    static var defaultValue: Self { get }
    /// Reads the section. Record findings on the nodes (they carry `file:line:column`), read
    /// every supported key, and report the unread ones (`ConfigMapping.reportUnknownKeys`).
    /// - Parameters:
    ///   - node: the section's node.
    ///   - context: resolves paths against the configuration file's directory.
    static func read(_ node: ConfigNode, context: PluginContext) -> Self
    /// Checks the section against the others, once every section is read: record findings
    /// on `node` (the section's node, or the document's when the section is absent). The
    /// default checks nothing.
    static func check(_ sections: ConfigSections, node: ConfigNode)
}

extension ConfigSection {
    public static func check(_ sections: ConfigSections, node: ConfigNode) {}
}

/// The sections a configuration holds beyond the core's, by type.
public struct ConfigSections: Sendable, Hashable {
    private var values: [String: any ConfigSection] = [:]

    /// No sections: every one at its default.
    public init() {}

    /// The section of `type`, or its default when the file has none (or the loader was not
    /// given that section).
    public subscript<Section: ConfigSection>(_ type: Section.Type) -> Section {
        values[Section.key] as? Section ?? Section.defaultValue
    }

    mutating func set(_ value: any ConfigSection) {
        values[type(of: value).key] = value
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.values.keys == rhs.values.keys
            && lhs.values.allSatisfy { key, value in rhs.values[key].map { AnyHashable(value) == AnyHashable($0) } ?? false }
    }

    public func hash(into hasher: inout Hasher) {
        for key in values.keys.sorted() { hasher.combine(key) }
    }
}
