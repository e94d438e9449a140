import ArgumentParser
import Foundation
import KeyBroker
import KeyBrokerServer

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the keystores' health, how many organizations use each, and those needing attention.",
        discussion:
            "A running server (--server) lists organizations whose last rotation failed; the store opened directly lists those due for a new pair. Every organization: keybroker orgs."
    )

    @OptionGroup var options: ConfigOptions
    @OptionGroup var remote: RemoteOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var page: PageOptions

    func run() async throws {
        let status: StatusView
        if let client = try remote.client() {
            status = try await client.get("/v1/status" + page.query)
        } else {
            let broker = try await options.openBroker()
            status = StatusView(try await attempt { try await broker.status(limit: page.limit) })
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
        var out = status.warnings.map { "WARNING: \($0)\n" }.joined()
        out += "KEYSTORES\n" + Terminal.table(["NAME", "TYPE", "HEALTH", "LATENCY", "DETAIL"], keystoreRows)
        let summary = status.summary
        out += "\nORGANIZATIONS\n\(summary.organizations) with a key pair"
        if !summary.keystores.isEmpty {
            out += " (" + summary.keystores.map { "\($0.name): \($0.organizations)" }.joined(separator: ", ") + ")"
        }
        out += "; \(summary.rotationFailures) with a failed rotation; \(summary.corruptKeyPairs) unreadable current pair(s)\n"
        for corrupt in status.corruptKeyPairs {
            out += "UNREADABLE: key pair \(corrupt.id) of \(corrupt.organization ?? "?"): \(corrupt.problem)\n"
        }
        guard !status.organizations.isEmpty else {
            return out
                + (summary.organizations == 0
                    ? "none yet; create a key pair with: keybroker keys generate --org ORG\n" : "none needs attention\n")
        }
        let rows = status.organizations.map { org in
            [
                org.organization, org.keystore, org.rotation, org.currentKeyPair?.id ?? "(none)",
                org.currentKeyPair.map { Terminal.age(status.checkedAt.timeIntervalSince($0.createdAt)) } ?? "-",
                org.nextRotation.map(Terminal.timestamp) ?? (org.currentKeyPair == nil ? "now" : "never"),
                note(org),
            ]
        }
        out += Terminal.table(["ORGANIZATION", "KEYSTORE", "ROTATION", "CURRENT PAIR", "AGE", "NEXT ROTATION", "NOTE"], rows)
        return out + (status.nextAfter.map { "more: keybroker status --after \($0)\n" } ?? "")
    }

    private static func note(_ org: StatusView.Organization) -> String {
        guard let current = org.currentKeyPair else { return "no key pair yet" }
        if org.fallbackInUse { return "ROTATION FAILING, last known key in use: \(org.lastRotationError ?? "")" }
        if org.keystoreChanged { return "keystore changed: current pair is from '\(current.keystore)'" }
        return org.rotationDue ? "rotation due" : ""
    }
}
