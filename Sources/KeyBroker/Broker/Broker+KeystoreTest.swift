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
        guard let candidate else {
            return try await test(organization: organization, policy: try await resolvedPolicy(for: organization))
        }
        return await runTest(
            organization: organization,
            keystore: candidate.keystore,
            name: candidate.settings.name,
            type: candidate.settings.type,
            context: candidate.settings.context(for: organization),
            spec: candidate.settings.keyPairSpec ?? policy(for: organization).keyPairSpec
        )
    }

    /// Tests the keystore that `policy` names for `organization` (a tenant's configuration
    /// before it is saved, say), saving nothing.
    /// - Throws: ``BrokerError`` (`invalidInput`) when the policy names no usable keystore (a
    ///   malformed key, a type not offered); every backend failure is in the report instead.
    public func test(organization: OrganizationID, policy: OrganizationPolicy) async throws(BrokerError) -> KeystoreTestReport {
        let chosen = try keystore(for: policy, of: organization)
        return await runTest(
            organization: organization,
            keystore: chosen.keystore,
            name: chosen.name,
            type: chosen.type,
            context: chosen.context,
            spec: policy.keyPairSpec
        )
    }

    private func runTest(
        organization: OrganizationID,
        keystore: any Keystore,
        name: String,
        type: String,
        context: EncryptionContext,
        spec: KeyPairSpec
    ) async -> KeystoreTestReport {
        var run = TestRun()

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
        let contextKey = context.pairs.keys.first ?? EncryptionContext.defaultContextKey
        let otherContext = EncryptionContext([contextKey: "keybroker-test-another-organization"])
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
            keystore: name,
            keystoreType: type,
            spec: spec,
            steps: run.steps
        )
    }
}
