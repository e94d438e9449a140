import Foundation
import Synchronization

/// Tenants' keystore instances, built on demand from a ``TenantKeystoreTemplate`` and the
/// tenant's own settings, at most ``capacity`` at a time (least recently used first out).
///
/// One instance serves every organization that names the same key: instances hold no
/// per-organization state (the context comes with each call). A dropped instance is simply
/// built again; nothing is lost. Building does no I/O (plugins do none in `make`).
public final class TenantKeystores: Sendable {
    /// Builds one instance (the loader's, which knows the plugins and the environment).
    public typealias Builder =
        @Sendable (_ template: TenantKeystoreTemplate, _ values: [String: String]) throws(ConfigError) -> any Keystore

    /// How many instances are kept.
    public static let capacity = 1000

    private struct Key: Hashable {
        let type: String
        let values: [String: String]
    }

    private let build: Builder
    private let cache = Mutex<(instances: [Key: (keystore: any Keystore, used: UInt64)], clock: UInt64)>(([:], 0))

    /// Creates an empty set of instances.
    public init(build: @escaping Builder) {
        self.build = build
    }

    /// The instance of `template` with the tenant's `values` (e.g. `["keyAlias": ARN]`).
    /// - Throws: ``ConfigError`` naming the tenant's setting when the values are not valid for
    ///   the template (a malformed ARN, a key in another region).
    public func keystore(_ template: TenantKeystoreTemplate, values: [String: String]) throws(ConfigError) -> any Keystore {
        let key = Key(type: template.type, values: values)
        if let cached = cache.withLock({ state -> (any Keystore)? in
            guard let entry = state.instances[key] else { return nil }
            state.clock &+= 1
            state.instances[key] = (entry.keystore, state.clock)
            return entry.keystore
        }) {
            return cached
        }
        let keystore = try build(template, values)
        cache.withLock { state in
            state.clock &+= 1
            state.instances[key] = (keystore, state.clock)
            if state.instances.count > Self.capacity,
                let oldest = state.instances.min(by: { $0.value.used < $1.value.used })?.key
            {
                state.instances[oldest] = nil
            }
        }
        return keystore
    }

    /// How many instances are kept now.
    public var count: Int { cache.withLock { $0.instances.count } }
}
