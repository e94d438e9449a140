import Crypto
import Foundation

/// A failed test step: what went wrong, and the keystore's error behind it, if any (kept so
/// that a report can be redacted by the error's kind).
struct KeystoreTestFailure: Error {
    let detail: String
    let keystoreError: KeystoreError?

    init(_ detail: String, keystoreError: KeystoreError? = nil) {
        self.detail = detail
        self.keystoreError = keystoreError
    }
}

/// Runs test steps in order, recording each, and skipping a step whose input failed.
struct TestRun {
    var steps: [KeystoreTestStep] = []
    private let clock = ContinuousClock()

    mutating func step<Output, Failure: Error>(
        _ name: String,
        _ body: () async throws(Failure) -> Output
    ) async -> Output? {
        guard !steps.contains(where: { $0.outcome != .passed }) else {
            steps.append(
                KeystoreTestStep(name: name, outcome: .skipped, duration: .zero, detail: "an earlier step failed", keystoreError: nil)
            )
            return nil
        }
        let start = clock.now
        do {
            let output = try await body()
            steps.append(KeystoreTestStep(name: name, outcome: .passed, duration: clock.now - start, detail: nil, keystoreError: nil))
            return output
        } catch {
            let failure = error as? KeystoreTestFailure
            steps.append(
                KeystoreTestStep(
                    name: name,
                    outcome: .failed,
                    duration: clock.now - start,
                    detail: failure?.detail ?? "\(error)",
                    keystoreError: failure?.keystoreError ?? (error as? KeystoreError)
                )
            )
            return nil
        }
    }

    mutating func step<Input, Output, Failure: Error>(
        _ name: String,
        after input: Input?,
        _ body: (Input) async throws(Failure) -> Output
    ) async -> Output? {
        guard let input else {
            steps.append(
                KeystoreTestStep(name: name, outcome: .skipped, duration: .zero, detail: "an earlier step failed", keystoreError: nil)
            )
            return nil
        }
        return await step(name) { () throws(Failure) in try await body(input) }
    }
}
