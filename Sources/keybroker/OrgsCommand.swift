import ArgumentParser
import Foundation
import KeyBroker
import KeyBrokerServer

struct OrgsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orgs",
        abstract: "List the organizations with a key pair, a page at a time, by id."
    )

    @OptionGroup var options: ConfigOptions
    @OptionGroup var remote: RemoteOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "Start after this organization id (the 'more:' line of the last page).") var after: String?
    @Option(help: "At most this many (1 to 1000).") var limit = 100

    func validate() throws {
        guard (1...1000).contains(limit) else { throw ValidationError("--limit must be from 1 to 1000") }
        if let after, OrganizationID(after) == nil {
            throw ValidationError("--after: \(OrganizationID.invalidMessage(after))")
        }
    }

    func run() async throws {
        let page: OrganizationListView
        if let client = try remote.client() {
            var path = "/v1/orgs?limit=\(limit)"
            if let after { path += "&after=\(after)" }
            page = try await client.get(path)
        } else {
            let broker = try await options.openBroker()
            let pairs = try await attempt { try await broker.store.currentPairs(.byOrganization(after: after), limit: limit) }
            for corrupt in pairs.corrupt {
                Terminal.error(
                    "warning: key pair \(corrupt.keyPairID) of \(corrupt.organization?.rawValue ?? "?") cannot be read: \(corrupt.problem)"
                )
            }
            page = try await attempt { try await OrganizationListView(broker: broker, pairs: pairs) }
        }
        if output.json {
            try Terminal.json(page)
            return
        }
        let rows = page.items.map { item in
            [
                item.organization, item.source, item.keystore, item.rotation, item.currentKeyPair?.id ?? "(none)",
                item.nextRotation.map(Terminal.timestamp) ?? "never",
            ]
        }
        var out = Terminal.table(["ORGANIZATION", "SOURCE", "KEYSTORE", "ROTATION", "CURRENT PAIR", "NEXT ROTATION"], rows)
        if let next = page.nextAfter { out += "more: keybroker orgs --after \(next)\n" }
        Terminal.write(out)
    }
}
