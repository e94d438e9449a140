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
    @OptionGroup var page: PageOptions

    func run() async throws {
        let list: OrganizationListView
        if let client = try remote.client() {
            list = try await client.get("/v1/orgs" + page.query)
        } else {
            let broker = try await options.openBroker()
            let pairs = try await attempt { try await broker.store.currentPairs(.byOrganization(after: page.after), limit: page.limit) }
            for corrupt in pairs.corrupt {
                Terminal.error(
                    "warning: key pair \(corrupt.keyPairID) of \(corrupt.organization?.rawValue ?? "?") cannot be read: \(corrupt.problem)"
                )
            }
            list = try await attempt { try await OrganizationListView(broker: broker, pairs: pairs) }
        }
        if output.json {
            try Terminal.json(list)
            return
        }
        let rows = list.items.map { item in
            [
                item.organization, item.source, item.keystore, item.rotation, item.currentKeyPair?.id ?? "(none)",
                item.nextRotation.map(Terminal.timestamp) ?? "never",
            ]
        }
        var out = Terminal.table(["ORGANIZATION", "SOURCE", "KEYSTORE", "ROTATION", "CURRENT PAIR", "NEXT ROTATION"], rows)
        if let next = list.nextAfter { out += "more: keybroker orgs --after \(next)\n" }
        Terminal.write(out)
    }
}
