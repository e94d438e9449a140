import Foundation

/// The `?verbose` readiness body: per-component state, no secrets.
struct VerboseReadiness: Encodable {
    struct Keystore: Encodable {
        let name: String
        let type: String
        let healthy: Bool
        let since: Date
        let errorKind: String?
        let backendCode: String?
    }
    struct Store: Encodable {
        let reachable: Bool
        let checkedAt: Date?
        /// `unavailable` or `damaged`; the message (which names the file) is in /v1/status.
        let errorKind: String?
        /// While it is not usable: how many organizations still get their public key, from
        /// memory (encryption goes on for them; the others answer 503).
        let publicKeysInMemory: Int?
    }
    let status: String
    let store: Store
    let keystores: [Keystore]
}
