import Crypto
import Foundation

extension Broker {
    /// The steps a keystore test runs, in order.
    public static let testStepNames = [
        "generate-key-pair", "encrypt-test-data", "decrypt-private-key", "decrypt-test-data", "compare",
        "context-binding",
    ]

    /// Tests a keystore for `organization` without saving anything: generates a pair through
    /// it, wraps random test data with the public key, unwraps the private key through the
    /// keystore, unwraps the test data, compares, and finally checks that the keystore
    /// refuses to unwrap under another organization's context.
    /// - Parameters:
    ///   - organization: the organization whose context binds the test pair.
    ///   - candidate: a keystore that is not (yet) configured; `nil` tests the organization's
    ///     configured keystore.
    public func test(
        organization: OrganizationID,
        candidate: (settings: KeystoreSettings, keystore: any Keystore)? = nil
    ) async throws(BrokerError) -> KeystoreTestReport {
        let policy = policy(for: organization)
        let keystore: any Keystore
        let settings: KeystoreSettings
        if let candidate {
            (keystore, settings) = (candidate.keystore, candidate.settings)
        } else {
            (keystore, settings) = try self.keystore(named: policy.keystore)
        }
        let spec = candidate?.settings.keyPairSpec ?? policy.keyPairSpec
        var run = TestRun()
        let context = settings.context(for: organization)

        let generated = await run.step("generate-key-pair") { () throws(KeystoreError) in
            try await keystore.generateKeyPair(spec, context: context)
        }
        let testData = Data(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
        let wrappedTestData = await run.step("encrypt-test-data", after: generated) { generated throws(KeyMaterialError) in
            try PublicKeyEncryption.wrapDataKey(testData, publicKeyDER: generated.publicKeyDER)
        }
        let privateKey = await run.step("decrypt-private-key", after: generated) { generated throws(KeystoreError) in
            try await keystore.decryptPrivateKey(generated.wrapped, context: context)
        }
        let unwrapped = await run.step("decrypt-test-data", after: privateKey) { privateKey throws(KeyMaterialError) in
            guard let wrappedTestData else { throw KeyMaterialError("no test data was encrypted") }
            // Milliseconds of CPU: off the event loops, as on the unwrap path.
            return try await BlockingWork.cpu(.decryption) { () throws(KeyMaterialError) in
                try privateKey.unwrapDataKey(wrappedTestData)
            }
        }
        _ = await run.step("compare", after: unwrapped) { unwrapped throws(KeyMaterialError) in
            guard unwrapped == testData else {
                throw KeyMaterialError("the decrypted test data differs from what was encrypted")
            }
        }
        let otherContext = EncryptionContext([settings.contextKey: "keybroker-test-another-organization"])
        _ = await run.step("context-binding", after: generated) { (generated: GeneratedKeyPair) throws(KeystoreTestFailure) in
            // A refusal is the expected answer here, and says nothing about the keystore's
            // health: without the flag, every test would mark a KMS keystore unhealthy.
            let answer = await KeystoreCall.$expectsRefusal.withValue(true) { () async -> Result<PrivateKeyMaterial, KeystoreError> in
                do throws(KeystoreError) {
                    return .success(try await keystore.decryptPrivateKey(generated.wrapped, context: otherContext))
                } catch {
                    return .failure(error)
                }
            }
            do throws(KeystoreError) {
                _ = try answer.get()
            } catch  where error.kind.isTransient {
                throw KeystoreTestFailure("could not check the binding, the keystore did not answer: \(error)", keystoreError: error)
            } catch {
                return  // refused, as it must be
            }
            throw KeystoreTestFailure(
                "the keystore unwrapped the private key under another organization's encryption context; it does not bind keys to organizations"
            )
        }
        return KeystoreTestReport(
            organization: organization,
            keystore: settings.name,
            keystoreType: settings.type,
            spec: spec,
            steps: run.steps
        )
    }
}
