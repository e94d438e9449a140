import Foundation
public import KeyBroker

/// `auth:`: API tokens, used by `keybroker serve`.
public struct AuthSettings: ConfigSection {
    public static let key = "auth"
    public static let defaultValue = AuthSettings(tokens: [])

    /// The configured tokens.
    public let tokens: [TokenSettings]

    /// Creates the settings.
    public init(tokens: [TokenSettings]) {
        self.tokens = tokens
    }
}

extension AuthSettings {
    public static func read(_ node: ConfigNode, context: PluginContext) -> AuthSettings {
        guard let mapping = node.mapping() else { return AuthSettings(tokens: []) }
        defer { mapping.reportUnknownKeys() }
        let tokens = mapping["tokens"]?.list() ?? []
        var names = Set<String>()
        var hashes = Set<String>()
        return AuthSettings(
            tokens: tokens.compactMap { tokenNode in
                guard let token = readToken(tokenNode) else { return nil }
                if !names.insert(token.name).inserted {
                    tokenNode.error("token name '\(token.name)' is used twice; each token needs its own name for the audit log")
                }
                if DocumentedTokenHashes.all.contains(token.sha256) {
                    tokenNode.warning(
                        "token '\(token.name)' has a sha256 printed in KeyBroker's documentation or examples: it is a placeholder, and for older examples anyone who read them holds the token. Replace it with one from: keybroker token create"
                    )
                }
                if !hashes.insert(token.sha256).inserted {
                    tokenNode.error(
                        "token '\(token.name)' has the same sha256 as an earlier token; create a separate token (keybroker token create)"
                    )
                }
                return token
            }
        )
    }

    /// The SHA-256 of the empty string.
    static let emptyTokenHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    private static func readToken(_ node: ConfigNode) -> TokenSettings? {
        guard let mapping = node.mapping() else { return nil }
        defer { mapping.reportUnknownKeys() }
        let name = mapping.required("name", example: "ops")?.nonEmptyString()
        var hash: String?
        if let hashNode = mapping.required("sha256", example: "<64 hex digits: printf %s TOKEN | sha256sum>"),
            let value = hashNode.nonEmptyString()
        {
            // ASCII hex only: `Character.isHexDigit` also admits full-width digits, which would
            // load and then never match any token.
            if value.utf8.count == 64, Data(hexEncoded: value) != nil {
                hash = value.lowercased()
                if hash == Self.emptyTokenHash {
                    hashNode.error(
                        "'\(hashNode.path)' is the SHA-256 of an empty string, which would admit a request with a blank token; create a token with: keybroker token create"
                    )
                }
            } else {
                hashNode.error("'\(hashNode.path)' must be the 64-hex-digit SHA-256 of the token, not the token itself")
            }
        }
        var permissions = Set<Permission>()
        let permissionsNode = mapping.required("permissions", example: "[encryption-key:view]")
        let permissionItems = permissionsNode?.list()
        for item in permissionItems ?? [] {
            if let permission = item.value(of: Permission.self) { permissions.insert(permission) }
        }
        if let permissionsNode, permissionItems?.isEmpty == true {
            permissionsNode.error(
                "'\(permissionsNode.path)' is empty; a token needs at least one of: \(Permission.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        var organizations: Set<OrganizationID> = []
        var everyOrganization = false
        let orgsNode = mapping.required("orgs", example: "[\"*\"] or a list of organization ids")
        let orgItems = orgsNode?.list()
        for item in orgItems ?? [] {
            guard let value = item.nonEmptyString() else { continue }
            if value == "*" {
                everyOrganization = true
            } else if let id = OrganizationID(value) {
                organizations.insert(id)
            } else {
                item.error(
                    "'\(ConfigNode.printable(value))' is not a valid organization id (or \"*\" for all); allowed: \(OrganizationID.allowedForm)"
                )
            }
        }
        if let orgsNode, orgItems?.isEmpty == true {
            orgsNode.error("'\(orgsNode.path)' is empty; list organization ids, or [\"*\"] for all")
        } else if let orgsNode, everyOrganization, !organizations.isEmpty {
            orgsNode.error("'\(orgsNode.path)' mixes \"*\" with organization ids; write either [\"*\"] or the ids")
        }
        guard let name, let hash else { return nil }
        return TokenSettings(
            name: name,
            sha256: hash,
            permissions: permissions,
            organizations: everyOrganization ? nil : organizations
        )
    }
}
