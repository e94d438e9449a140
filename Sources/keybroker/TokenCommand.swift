import ArgumentParser
import Foundation
import KeyBroker
import KeyBrokerServer
import Logging

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "API tokens.",
        subcommands: [Create.self]
    )

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a new random API token once, and the line to add under auth.tokens.",
            discussion: "Only the token's SHA-256 goes into the configuration; the token itself is shown once and stored nowhere."
        )

        @Option(help: "A name for audit logs (e.g. recorder-eu).")
        var name: String

        @Option(
            name: .customLong("permission"),
            help: "encryption-key:view, encryption-key:edit, recording:encrypt or recording:decrypt (repeatable)."
        )
        var permissions: [String]

        @Option(name: .customLong("org"), help: "An organization the token may act for (repeatable), or * for all.")
        var organizations: [String]

        func validate() throws {
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
                throw ValidationError("--name must be letters, digits, '-', '_' or '.'")
            }
            for permission in permissions where Permission(rawValue: permission) == nil {
                throw ValidationError(
                    "unknown permission '\(permission)'; allowed: \(Permission.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            guard !permissions.isEmpty else { throw ValidationError("give at least one --permission") }
            guard !organizations.isEmpty else { throw ValidationError("give at least one --org (or --org '*' for all)") }
            if organizations.contains("*"), organizations.count > 1 { throw ValidationError("--org '*' stands alone") }
            for org in organizations where org != "*" && !OrganizationID.isValid(org) {
                throw ValidationError(OrganizationID.invalidMessage(org))
            }
        }

        func run() throws {
            let (token, hash) = TokenAuthenticator.newToken()
            let orgs = organizations.map { $0 == "*" ? "\"*\"" : $0 }.joined(separator: ", ")
            Terminal.write(
                """
                token (shown once; give it to the client, store it in a secret manager):
                  \(token)
                add under auth.tokens in the configuration, then reload (kill -HUP or POST /v1/admin/reload):
                  - { name: \(name), sha256: \(hash), permissions: [\(permissions.joined(separator: ", "))], orgs: [\(orgs)] }

                """
            )
        }
    }
}
