import ArgumentParser
import Foundation
import KeyBroker
import KeyBrokerServer

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show every keystore's health and every organization's current key pair."
    )

    @OptionGroup var options: ConfigOptions
    @OptionGroup var remote: RemoteOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let status: StatusView
        if let client = try remote.client() {
            status = try await client.get("/v1/status")
        } else {
            let broker = try await options.openBroker()
            status = StatusView(try await attempt { try await broker.status() })
        }
        if output.json {
            try Terminal.json(status)
        } else {
            Terminal.write(Self.text(status))
        }
    }

    static func text(_ status: StatusView) -> String {
        let keystoreRows = status.keystores.map { keystore in
            [
                keystore.name, keystore.type, keystore.healthy ? "healthy" : "UNHEALTHY",
                String(format: "%.1f ms", keystore.latencyMs), keystore.detail,
            ]
        }
        var out = "KEYSTORES\n" + Terminal.table(["NAME", "TYPE", "HEALTH", "LATENCY", "DETAIL"], keystoreRows)
        out += "\nORGANIZATIONS\n"
        guard !status.organizations.isEmpty else {
            return out + "none yet; create a key pair with: keybroker keys generate --org ORG\n"
        }
        let rows = status.organizations.map { org in
            [
                org.organization, org.keystore, org.rotation, org.currentKeyPair?.id ?? "(none)",
                org.currentKeyPair.map { Terminal.age(status.checkedAt.timeIntervalSince($0.createdAt)) } ?? "-",
                org.nextRotation.map(Terminal.timestamp) ?? (org.currentKeyPair == nil ? "now" : "never"),
                note(org),
            ]
        }
        return out + Terminal.table(["ORGANIZATION", "KEYSTORE", "ROTATION", "CURRENT PAIR", "AGE", "NEXT ROTATION", "NOTE"], rows)
    }

    private static func note(_ org: StatusView.Organization) -> String {
        guard let current = org.currentKeyPair else { return "no key pair yet" }
        if org.fallbackInUse { return "ROTATION FAILING, last known key in use: \(org.lastRotationError ?? "")" }
        if org.keystoreChanged { return "keystore changed: current pair is from '\(current.keystore)'" }
        return org.rotationDue ? "rotation due" : ""
    }
}
