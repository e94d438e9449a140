import Foundation
import Logging
import Yams

/// A configuration together with the keystore instances it describes.
public struct LoadedConfig: Sendable {
    /// The validated settings.
    public let config: BrokerConfig
    /// One instance per `keystores:` entry.
    public let keystores: [String: any Keystore]
    /// Findings that do not stop the configuration from loading.
    public let warnings: [ConfigDiagnostic]
    /// Tenants' keystores, built from `tenantKeystores:` templates as tenants use them.
    public let tenantKeystores: TenantKeystores

    /// Creates a loaded configuration (the loader's result; the server wraps keystores in it).
    public init(
        config: BrokerConfig,
        keystores: [String: any Keystore],
        warnings: [ConfigDiagnostic],
        tenantKeystores: TenantKeystores
    ) {
        self.config = config
        self.keystores = keystores
        self.warnings = warnings
        self.tenantKeystores = tenantKeystores
    }
}
