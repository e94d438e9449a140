public import Foundation
public import KeyBroker

/// `GET /v1/orgs/{org}/key-configuration`: an organization's effective key configuration,
/// where it comes from, and the last error through it.
public struct KeyConfigurationView: Codable, Sendable {
    public let organization: String
    /// A key of `tenantKeystores:`, or `default`.
    public let type: String
    public let keyAlias: String?
    public let rotation: String
    public let keyPairSpec: String
    /// `tenant` (its own, through this API), `operator` (pinned in the file: read-only here)
    /// or `default`.
    public let source: String
    /// Send as `If-Match` with a change; 0 while nothing is stored.
    public let version: Int
    public let updatedAt: Date?
    public let updatedBy: String?
    /// The last failure of a test, rotation or unwrap through the organization's own keystore.
    public let lastError: KeyConfigurationError?
    /// The types this organization may choose (`default` always; none while the operator
    /// offers none or pinned the organization).
    public let offeredTypes: [String]

    /// The view of `organization` under `broker`, with `stored` as its own configuration.
    package init(_ organization: OrganizationID, stored: StoredKeyConfiguration?, broker: Broker) {
        let policy = broker.config.policy(for: organization, stored: stored)
        let pinned = policy.source == .operator
        let configuration = stored?.configuration
        self.organization = organization.rawValue
        type =
            pinned || configuration == nil
            ? (TenantKeystoreTemplate.type(ofInstanceName: policy.keystore) ?? TenantKeyConfiguration.defaultType)
            : configuration?.type ?? TenantKeyConfiguration.defaultType
        keyAlias = pinned ? nil : configuration?.keyAlias
        rotation = policy.rotation.rawValue
        keyPairSpec = policy.keyPairSpec.rawValue
        source = policy.source.rawValue
        version = stored?.version ?? 0
        updatedAt = stored?.updatedAt
        updatedBy = stored?.updatedBy
        lastError = pinned ? nil : stored?.lastError
        offeredTypes = pinned ? [] : [TenantKeyConfiguration.defaultType] + broker.config.tenantKeystores.keys.sorted()
    }
}

/// The body of `PUT /v1/orgs/{org}/key-configuration` and `POST …/key-configuration/test`.
public struct KeyConfigurationRequest: Codable, Sendable {
    /// A key of `tenantKeystores:`, or `default`.
    public let type: String
    /// The organization's own key (for `aws-kms-symmetric`: alias ARN or key ARN).
    public let keyAlias: String?
    /// daily, weekly, monthly, yearly or never; absent: `defaults.rotation`.
    public let rotation: String?
    /// RSA_2048, RSA_3072 or RSA_4096; absent: the keystore's, else `defaults.keyPairSpec`.
    public let keyPairSpec: String?

    /// Creates a request.
    public init(type: String, keyAlias: String?, rotation: String?, keyPairSpec: String?) {
        self.type = type
        self.keyAlias = keyAlias
        self.rotation = rotation
        self.keyPairSpec = keyPairSpec
    }

    private enum CodingKeys: String, CodingKey { case type, keyAlias, rotation, keyPairSpec }

    /// Decodes a body: an optional field is absent or a string; `null` is refused as a value of
    /// the wrong type (docs/openapi.yaml), not read as absent.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func optional(_ key: CodingKeys) throws -> String? {
            container.contains(key) ? try container.decode(String.self, forKey: key) : nil
        }
        type = try container.decode(String.self, forKey: .type)
        keyAlias = try optional(.keyAlias)
        rotation = try optional(.rotation)
        keyPairSpec = try optional(.keyPairSpec)
    }

    /// The configuration it asks for.
    /// - Throws: 400 naming the field and what is allowed.
    package func configuration() throws -> TenantKeyConfiguration {
        let rotation = try self.rotation.map { value -> RotationCadence in
            guard let cadence = RotationCadence(rawValue: value) else {
                throw APIError.badRequest(
                    "rotation must be one of \(RotationCadence.allowedValues), found '\(DisplayText.escaped(String(value.prefix(32))))'"
                )
            }
            return cadence
        }
        let spec = try keyPairSpec.map { value -> KeyPairSpec in
            guard let spec = KeyPairSpec(rawValue: value) else {
                throw APIError.badRequest(
                    "keyPairSpec must be one of \(KeyPairSpec.allowedValues), found '\(DisplayText.escaped(String(value.prefix(32))))'"
                )
            }
            return spec
        }
        return TenantKeyConfiguration(type: type, keyAlias: keyAlias, rotation: rotation, keyPairSpec: spec)
    }
}

/// The answer to a saved configuration: it, the test that passed, and the new current pair.
public struct KeyConfigurationSavedView: Codable, Sendable {
    public let configuration: KeyConfigurationView
    public let test: TestReportView
    public let keyPair: KeyPairView

    package init(configuration: KeyConfigurationView, test: TestReportView, keyPair: KeyPairView) {
        self.configuration = configuration
        self.test = test
        self.keyPair = keyPair
    }
}
