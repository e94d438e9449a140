import ArgumentParser
import Foundation
import KeyBroker
import KeyBrokerServer

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

