import ArgumentParser
import Foundation
import KeyBroker

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show every keystore's health and every organization's current key pair.")

    @OptionGroup var options: ConfigOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let broker = try await options.openBroker()
        let status = try await attempt { try await broker.status() }
        if output.json {
            try Terminal.json(StatusView(status))
            return
        }
        let keystoreRows = status.keystores.map { keystore in
            [keystore.name, keystore.type, keystore.health.isHealthy ? "healthy" : "UNHEALTHY",
             Terminal.milliseconds(keystore.health.latency), keystore.health.detail]
        }
        var out = "KEYSTORES\n" + Terminal.table(["NAME", "TYPE", "HEALTH", "LATENCY", "DETAIL"], keystoreRows)
        out += "\nORGANIZATIONS\n"
        if status.organizations.isEmpty {
            out += "none yet; create a key pair with: keybroker keys generate --org ORG\n"
        } else {
            let rows = status.organizations.map { org in
                [
                    org.organization.rawValue, org.policy.keystore, org.policy.rotation.rawValue,
                    org.current.map { $0.id.uuidString.lowercased() } ?? "(none)",
                    org.current.map { Terminal.age(status.checkedAt.timeIntervalSince($0.createdAt)) } ?? "-",
                    org.nextRotation.map(Terminal.timestamp) ?? (org.current == nil ? "now" : "never"),
                    note(org),
                ]
            }
            out += Terminal.table(["ORGANIZATION", "KEYSTORE", "ROTATION", "CURRENT PAIR", "AGE", "NEXT ROTATION", "NOTE"], rows)
        }
        Terminal.write(out)
    }

    private func note(_ org: OrganizationStatus) -> String {
        if org.current == nil { return "no key pair yet" }
        if org.keystoreChanged { return "keystore changed: current pair is from '\(org.current!.keystoreName)'" }
        return org.rotationDue ? "rotation due" : ""
    }
}

struct StatusView: Encodable {
    struct Keystore: Encodable {
        let name: String
        let type: String
        let healthy: Bool
        let detail: String
        let latencyMs: Double
        let error: KeystoreErrorView?
    }

    struct Organization: Encodable {
        let organization: String
        let keystore: String
        let rotation: String
        let keyPairSpec: String
        let currentKeyPair: KeyPairView?
        let nextRotation: Date?
        let rotationDue: Bool
        let keystoreChanged: Bool
    }

    let checkedAt: Date
    let keystores: [Keystore]
    let organizations: [Organization]

    init(_ status: BrokerStatus) {
        checkedAt = status.checkedAt
        keystores = status.keystores.map {
            Keystore(name: $0.name, type: $0.type, healthy: $0.health.isHealthy, detail: $0.health.detail,
                latencyMs: $0.health.latency.milliseconds, error: $0.health.error.map(KeystoreErrorView.init))
        }
        organizations = status.organizations.map {
            Organization(
                organization: $0.organization.rawValue, keystore: $0.policy.keystore, rotation: $0.policy.rotation.rawValue,
                keyPairSpec: $0.policy.keyPairSpec.rawValue, currentKeyPair: $0.current.map { KeyPairView($0, current: true) },
                nextRotation: $0.nextRotation, rotationDue: $0.rotationDue, keystoreChanged: $0.keystoreChanged)
        }
    }
}
