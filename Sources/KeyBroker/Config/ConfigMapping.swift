import Foundation
import Yams

/// A YAML mapping with string keys, tracking which keys were read so that every unread
/// one can be reported as unknown.
public final class ConfigMapping {
    /// The mapping's own node.
    public let node: ConfigNode
    private let entries: [(key: String, keyNode: ConfigNode, value: ConfigNode)]
    private var read: Set<String> = []

    init(node: ConfigNode, mapping: Yams.Node.Mapping) {
        self.node = node
        var entries: [(String, ConfigNode, ConfigNode)] = []
        for (key, value) in mapping {
            let keyNode = node.child(key, path: node.path)
            guard case .scalar(let scalar) = key else {
                keyNode.error("keys in '\(node.path)' must be plain names")
                continue
            }
            let childPath = node.path.isEmpty ? scalar.string : "\(node.path).\(scalar.string)"
            entries.append((scalar.string, keyNode, node.child(value, path: childPath)))
        }
        self.entries = entries
    }

    /// The keys in file order.
    public var keys: [String] { entries.map(\.key) }

    /// Every entry in file order, marking all as read.
    public func allEntries() -> [(key: String, keyNode: ConfigNode, value: ConfigNode)] {
        read.formUnion(entries.map(\.key))
        return entries
    }

    /// The value under `key`, marking it read; `nil` (and no finding) when absent or null.
    public subscript(key: String) -> ConfigNode? {
        read.insert(key)
        guard let value = entries.first(where: { $0.key == key })?.value, !value.isNull else { return nil }
        return value
    }

    /// The value under `key`, recording an error naming what to write when it is absent.
    public func required(_ key: String, example: String) -> ConfigNode? {
        guard let value = self[key] else {
            node.error("\(node.displayName) needs '\(key)'; for example: \(key): \(example)")
            return nil
        }
        return value
    }

    /// Records an error for every key that was never read, listing the allowed ones.
    public func reportUnknownKeys() {
        let allowed = read.sorted()
        for entry in entries where !read.contains(entry.key) {
            let scope = node.path.isEmpty ? "at the top level" : "in '\(node.path)'"
            entry.keyNode.error(
                "unknown key '\(entry.key)' \(scope); allowed keys: \(allowed.joined(separator: ", "))"
                    + Suggestion.phrase(for: entry.key, among: allowed)
            )
        }
    }
}
