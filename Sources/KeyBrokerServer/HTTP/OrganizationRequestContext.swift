public import Hummingbird
import HummingbirdAuth
public import KeyBroker

/// The context of `/v1/orgs/{org}/…`: the organization id parsed once, from the path, before
/// anything else (an id of the wrong form is `400` even without a token, and reveals nothing
/// about existence). The routes below check the caller's permission for it once, by
/// ``RequirePermission``; no handler parses or authorizes again.
public struct OrganizationRequestContext: ChildRequestContext, KeyBrokerContext {
    public typealias ParentContext = KeyBrokerRequestContext

    public var coreContext: CoreRequestContextStorage
    public var identity: Principal?
    public let snapshot: RuntimeSnapshot
    /// The organization of the path.
    public let organizationID: OrganizationID

    public init(context: KeyBrokerRequestContext) throws {
        let raw = context.parameters.get("org") ?? ""
        guard let organization = OrganizationID(raw) else { throw APIError.badRequest(OrganizationID.invalidMessage(raw)) }
        coreContext = context.coreContext
        identity = context.identity
        snapshot = try context.snapshot
        organizationID = organization
    }

    public var organization: OrganizationID? { organizationID }
}
