import ArgumentParser
import KeyBroker

/// `--after ORG --limit N`: one page of organizations, by id, as the API pages them.
struct PageOptions: ParsableArguments {
    @Option(help: "Start after this organization id (the 'more:' line of the last page).") var after: String?
    @Option(help: "At most this many organizations (1 to 1000).") var limit = 100

    func validate() throws {
        guard (1...1000).contains(limit) else { throw ValidationError("--limit must be from 1 to 1000") }
        if let after, OrganizationID(after) == nil {
            throw ValidationError("--after: \(OrganizationID.invalidMessage(after))")
        }
    }

    /// `?limit=…&after=…` for the API.
    var query: String { "?limit=\(limit)" + (after.map { "&after=\($0)" } ?? "") }
}
