import Foundation
public import KeyBroker

/// `auth:`: API tokens and client certificates, used by `keybroker serve`.
public struct AuthSettings: ConfigSection {
    public static let key = "auth"
    public static let defaultValue = AuthSettings(tokens: [])

    /// The configured tokens.
    public let tokens: [TokenSettings]
    /// The identities of client certificates (`auth.clients`); they need `server.tls.clientCA`.
    public let clients: [ClientCertificateSettings]

    /// Creates the settings.
    public init(tokens: [TokenSettings], clients: [ClientCertificateSettings] = []) {
        self.tokens = tokens
        self.clients = clients
    }

    /// Client certificates are verified against `server.tls.clientCA`; without it none is ever
    /// asked for, so `auth.clients` would silently admit no one.
    public static func check(_ sections: ConfigSections, node: ConfigNode) {
        guard !sections[AuthSettings.self].clients.isEmpty, sections[ServerSettings.self].tls?.clientCA == nil else { return }
        node.error(
            "'auth.clients' names client certificates, but 'server.tls.clientCA' is not set, so the server would never ask for one; set server.tls { certificate, privateKey, clientCA } (the CA that issues the client certificates) or remove auth.clients"
        )
    }
}

extension AuthSettings {
    public static func read(_ node: ConfigNode, context: PluginContext) -> AuthSettings {
        guard let mapping = node.mapping() else { return AuthSettings(tokens: []) }
        defer { mapping.reportUnknownKeys() }
        let tokens = mapping["tokens"]?.list() ?? []
        var names = Set<String>()
        var hashes = Set<String>()
        let tokenSettings = tokens.compactMap { tokenNode -> TokenSettings? in
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
        var matches = Set<ClientCertificateSettings.Match>()
        let clients = (mapping["clients"]?.list() ?? []).compactMap { clientNode -> ClientCertificateSettings? in
            guard let client = readClient(clientNode) else { return nil }
            if !names.insert(client.name).inserted {
                clientNode.error(
                    "name '\(client.name)' is used twice (tokens and clients share names); each identity needs its own name for the audit log"
                )
            }
            if !matches.insert(client.match).inserted {
                clientNode.error(
                    "client '\(client.name)' matches the same certificates as an earlier client; give each client its own spkiSha256 or subject"
                )
            }
            return client
        }
        return AuthSettings(tokens: tokenSettings, clients: clients)
    }

    private static func readClient(_ node: ConfigNode) -> ClientCertificateSettings? {
        guard let mapping = node.mapping() else { return nil }
        defer { mapping.reportUnknownKeys() }
        let name = mapping.required("name", example: "recorder")?.nonEmptyString()
        var match: ClientCertificateSettings.Match?
        switch (mapping["spkiSha256"], mapping["subject"]) {
        case (let digestNode?, nil):
            if let value = digestNode.nonEmptyString() {
                if value.utf8.count == 64, let digest = Data(hexEncoded: value) {
                    match = .spkiSha256(digest)
                } else {
                    digestNode.error(
                        "'\(digestNode.path)' must be the 64-hex-digit SHA-256 of the certificate's public key (SubjectPublicKeyInfo, DER): openssl x509 -in client.pem -noout -pubkey | openssl pkey -pubin -outform der | sha256sum"
                    )
                }
            }
        case (nil, let subjectNode?):
            if let value = subjectNode.nonEmptyString() { match = .subject(value) }
        case (.some, .some):
            node.error("'\(node.path)' has both 'spkiSha256' and 'subject'; write one")
        case (nil, nil):
            node.error(
                "'\(node.path)' needs 'spkiSha256' (the certificate's public key) or 'subject' (as openssl x509 -noout -subject -nameopt RFC2253 prints it, e.g. CN=recorder,O=Acme)"
            )
        }
        let scope = readScope(mapping)
        guard let name, let match, let scope else { return nil }
        return ClientCertificateSettings(name: name, match: match, permissions: scope.permissions, organizations: scope.organizations)
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
        let scope = readScope(mapping)
        guard let name, let hash, let scope else { return nil }
        return TokenSettings(name: name, sha256: hash, permissions: scope.permissions, organizations: scope.organizations)
    }

    /// `permissions` and `orgs`, shared by tokens and client certificates.
    private static func readScope(_ mapping: ConfigMapping) -> (permissions: Set<Permission>, organizations: Set<OrganizationID>?)? {
        var permissions = Set<Permission>()
        let permissionsNode = mapping.required("permissions", example: "[encryption-key:view]")
        let permissionItems = permissionsNode?.list()
        for item in permissionItems ?? [] {
            if let permission = item.value(of: Permission.self) { permissions.insert(permission) }
        }
        if let permissionsNode, permissionItems?.isEmpty == true {
            permissionsNode.error(
                "'\(permissionsNode.path)' is empty; it needs at least one of: \(Permission.allCases.map(\.rawValue).joined(separator: ", "))"
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
        return (permissions, everyOrganization ? nil : organizations)
    }
}
