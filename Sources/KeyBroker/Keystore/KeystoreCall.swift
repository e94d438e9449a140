import Foundation

/// What the caller of a keystore expects of the call in progress.
public enum KeystoreCall {
    /// Set while the broker makes a call it expects the keystore to refuse (the keystore
    /// test's `context-binding` probe): such a refusal says nothing about the keystore's
    /// health, so instrumentation must not count it as an outage.
    @TaskLocal public static var expectsRefusal = false
}
