import Foundation
import Logging

/// A keystore backend type that can build named instances from configuration.
///
/// Adding a backend means a folder under `Plugins/` with a type conforming to this
/// protocol, and one `register` line where the executable builds its registry.
public protocol KeystorePlugin: Sendable {
    /// The `type:` value that selects this plugin (`aws-kms-symmetric`).
    static var type: String { get }

    /// Whether instances keep private keys unwrapped (then `config validate` warns about
    /// every organization that uses one).
    static var storesPlaintextPrivateKeys: Bool { get }

    /// Builds an instance from its settings.
    ///
    /// Read every supported key through `settings`, even optional ones: keys that were
    /// never read are reported as unknown. Record problems on the settings (they carry
    /// `file:line:column`) rather than throwing, so that all of them reach the operator
    /// at once. Do no I/O here: `config validate` builds keystores too, and must change
    /// nothing.
    /// - Parameters:
    ///   - name: the instance name (`keystores.<name>`).
    ///   - settings: the instance's keys, without `type`.
    ///   - context: what the plugin may need from its surroundings.
    /// - Returns: the instance, or `nil` when `settings` recorded an error.
    static func make(name: String, settings: ConfigMapping, context: PluginContext) -> (any Keystore)?

    /// The settings an organization's administrator chooses for itself when the operator
    /// offers this type under `tenantKeystores:` (for `aws-kms-symmetric`: `keyAlias`); the
    /// operator's template holds the rest. Empty (the default): tenants cannot choose it.
    static var tenantKeys: [String] { get }

    /// Values for ``tenantKeys`` that a valid `template` accepts, so that the loader can check
    /// the template before any tenant uses it (e.g. an alias ARN in the template's region).
    static func tenantPlaceholders(template: ConfigMapping) -> [String: String]
}

extension KeystorePlugin {
    public static var storesPlaintextPrivateKeys: Bool { false }
    public static var tenantKeys: [String] { [] }
    public static func tenantPlaceholders(template: ConfigMapping) -> [String: String] { [:] }
}
