import Hummingbird
import KeyBroker

/// `?limit=&after=` of a page keyed by organization id.
struct PageParameters: Sendable {
    /// At most this many items.
    let limit: Int
    /// After this organization (`nil`: from the first).
    let after: OrganizationID?

    /// The largest page.
    static let maximumLimit = 1000

    /// Reads them from `request`.
    /// - Throws: 400 for a limit outside 1…1000 or an `after` that is no organization id.
    init(_ request: Request, defaultLimit: Int = 100) throws {
        let query = request.uri.queryParameters
        limit =
            try query["limit"].map { value -> Int in
                guard let number = Int(value), (1...Self.maximumLimit).contains(number) else {
                    throw APIError.badRequest("limit must be a whole number from 1 to \(Self.maximumLimit)")
                }
                return number
            } ?? defaultLimit
        after = try query["after"].map { value -> OrganizationID in
            guard let organization = OrganizationID(String(value)) else {
                throw APIError.badRequest("after: \(OrganizationID.invalidMessage(String(value)))")
            }
            return organization
        }
    }

    /// The first `limit` of `organizations` after `after`, in order, and the next cursor: one
    /// pass, holding at most `limit + 1` at a time (the input may be every failing organization).
    func page(of organizations: some Sequence<OrganizationID>) -> (page: [OrganizationID], nextAfter: String?) {
        var smallest: [OrganizationID] = []
        for organization in organizations where after.map({ organization > $0 }) ?? true {
            guard smallest.count <= limit || organization < smallest[smallest.count - 1] else { continue }
            let index = smallest.firstIndex { organization < $0 } ?? smallest.count
            smallest.insert(organization, at: index)
            if smallest.count > limit + 1 { smallest.removeLast() }
        }
        let page = Array(smallest.prefix(limit))
        return (page, smallest.count > limit ? page.last?.rawValue : nil)
    }
}
