import Foundation

/// Limits on how long decrypted private keys stay in memory.
///
/// The trade-off: a cached key answers unwraps without a keystore call (fast, and
/// unaffected by short keystore outages), but a customer who disables its KMS key or
/// changes its key policy is locked out only once the cached key expires — within
/// `maxAge`. `maxAge: 0s` turns the cache off: every unwrap calls the keystore.
public struct PrivateKeyCachePolicy: Sendable, Hashable {
    /// How long a decrypted key may be reused.
    public var maxAge: Duration
    /// How many unwraps one decrypted key may serve before it is decrypted again.
    public var maxUses: Int
    /// How many decrypted keys may be held at once; the oldest is dropped first.
    public var maxEntries: Int

    /// Five minutes, 10,000 uses, 1,000 keys: a revoked KMS key stops working within five
    /// minutes, and a busy organization costs its KMS about one call per pair every five minutes.
    public static let `default` = PrivateKeyCachePolicy(maxAge: .seconds(300), maxUses: 10_000, maxEntries: 1_000)

    /// Whether keys are cached at all.
    public var isEnabled: Bool { maxAge > .zero && maxUses > 0 && maxEntries > 0 }

    /// Creates a policy.
    public init(maxAge: Duration, maxUses: Int, maxEntries: Int) {
        self.maxAge = maxAge
        self.maxUses = maxUses
        self.maxEntries = maxEntries
    }
}
