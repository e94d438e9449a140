import Foundation
import Logging

/// The outcome of ``Broker/setKeyConfiguration(_:for:expectedVersion:by:beforeCommit:)``.
public enum KeyConfigurationChange: Sendable {
    /// Tested, stored, and a new pair made through it is the organization's current pair.
    case saved(StoredKeyConfiguration, report: KeystoreTestReport, pair: KeyPairRecord)
    /// The test failed: nothing was stored (the failure is the configuration's last error).
    case testFailed(KeystoreTestReport)
    /// `expectedVersion` is not the stored version: nothing was stored.
    case conflict(storedVersion: Int)
    /// The operator pinned the organization in the file, which wins: nothing was stored.
    case pinnedByOperator(file: String)
}

extension Broker {
    /// The organization's own configuration, if it has one.
    public func keyConfiguration(for organization: OrganizationID) async throws(BrokerError) -> StoredKeyConfiguration? {
        do {
            return try await store.keyConfiguration(for: organization)
        } catch {
            throw BrokerError.storage(error)
        }
    }

    /// ``resolvedPolicy(for:)`` for views that list many organizations, with the stored
    /// configuration's last error, from one read: an organization whose stored configuration
    /// cannot be read is shown with the file's settings instead of failing the whole page (its
    /// own requests still fail with `corrupt_record`, and the log says why).
    public func listedPolicy(
        for organization: OrganizationID
    ) async throws(BrokerError) -> (
        policy: OrganizationPolicy, lastError: KeyConfigurationError?
    ) {
        guard config.organizations[organization] == nil else { return (config.policy(for: organization), nil) }
        do {
            let stored = try await store.keyConfiguration(for: organization)
            return (config.policy(for: organization, stored: stored), stored?.lastError)
        } catch  where !error.affectsWholeStore {
            logger.error(
                "an organization's key configuration cannot be read",
                metadata: ["org": "\(organization)", "error": "\(error.message)"]
            )
            return (policy(for: organization), nil)
        } catch {
            throw BrokerError.storage(error)
        }
    }

    /// Checks that `configuration` names something this server offers, before anything runs.
    /// - Throws: ``BrokerError`` (`invalidInput`) naming what is wrong and what is allowed.
    public func validate(_ configuration: TenantKeyConfiguration) throws(BrokerError) {
        if configuration.type == TenantKeyConfiguration.defaultType {
            guard configuration.keyAlias == nil else {
                throw BrokerError(
                    .invalidInput,
                    "keyAlias is for a keystore of the organization's own; type 'default' uses the platform's keystore"
                )
            }
            return
        }
        let template = try tenantTemplate(configuration.type)
        guard let alias = configuration.keyAlias, !alias.isEmpty else {
            throw BrokerError(
                .invalidInput,
                "type '\(template.type)' needs keyAlias: the ARN of the organization's own key (\(template.tenantKeys.joined(separator: ", ")))"
            )
        }
        guard alias.utf8.count <= 2048 else { throw BrokerError(.invalidInput, "keyAlias is longer than 2048 bytes") }
        guard alias.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value < 0x7F }) else {
            throw BrokerError(
                .invalidInput,
                "keyAlias must be printable ASCII without spaces (an ARN such as arn:aws:kms:eu-west-1:111122223333:alias/recordings), found '\(DisplayText.escaped(String(alias.prefix(64))))'"
            )
        }
    }

    /// The policy `configuration` gives `organization` (nothing stored).
    public func policy(for organization: OrganizationID, trying configuration: TenantKeyConfiguration) -> OrganizationPolicy {
        let candidate = StoredKeyConfiguration(
            organization: organization,
            configuration: configuration,
            version: 0,
            updatedAt: now(),
            updatedBy: "",
            lastError: nil
        )
        return config.policy(for: organization, stored: candidate)
    }

    /// Edit, test, save: tests `configuration` for `organization` (a pair through it, test data
    /// encrypted and decrypted, compared, the binding to the organization checked); only when
    /// every step passed, makes a new pair through it (reason `config-change`) and stores the
    /// configuration and the pair in one transaction. A failed test stores nothing but the
    /// failure, as the stored configuration's last error.
    /// - Parameters:
    ///   - expectedVersion: the version the caller edited (`If-Match`), or `nil`.
    ///   - actor: who, for `updatedBy` and the pair's `requestedBy`.
    ///   - beforeCommit: runs with the new pair before it is stored (the audit record).
    public func setKeyConfiguration(
        _ configuration: TenantKeyConfiguration,
        for organization: OrganizationID,
        expectedVersion: Int?,
        by actor: String,
        beforeCommit: (KeyPairRecord) async throws(BrokerError) -> Void = { _ in }
    ) async throws(BrokerError) -> KeyConfigurationChange {
        guard config.organizations[organization] == nil else { return .pinnedByOperator(file: config.source) }
        try revocations.check(organization)
        try validate(configuration)
        let stored = try await keyConfiguration(for: organization)
        if let expectedVersion, expectedVersion != (stored?.version ?? 0) {
            return .conflict(storedVersion: stored?.version ?? 0)
        }
        let policy = policy(for: organization, trying: configuration)
        let report = try await test(organization: organization, policy: policy)
        guard report.passed else {
            if stored?.configuration == configuration { await recordError(of: report, for: organization, stored: stored) }
            return .testFailed(report)
        }
        let pair = try await newKeyPair(for: organization, policy: policy, reason: .configChange, requestedBy: actor)
        try await beforeCommit(pair)
        let outcome: KeyConfigurationSave
        do {
            outcome = try await store.saveKeyConfiguration(
                configuration,
                for: organization,
                expectedVersion: expectedVersion,
                updatedBy: actor,
                at: now(),
                newPair: pair
            )
        } catch {
            throw BrokerError.storage(error)
        }
        switch outcome {
        case .saved(let saved):
            await forgetDerivedState(of: organization)
            logger.info(
                "key configuration saved",
                metadata: [
                    "org": "\(organization)", "type": "\(configuration.type)", "version": "\(saved.version)", "keyPair": "\(pair.id)",
                ]
            )
            return .saved(saved, report: report, pair: pair)
        case .conflict(let version):
            return .conflict(storedVersion: version)
        case .revoked:
            throw BrokerError.revoked(organization)
        }
    }

    /// Keeps a failed test of the organization's *stored* configuration's key as its last error
    /// (a candidate's failure says nothing about the key in use, and is in the 422 instead).
    private func recordError(of report: KeystoreTestReport, for organization: OrganizationID, stored: StoredKeyConfiguration?) async {
        guard let stored, let step = report.steps.first(where: { $0.outcome == .failed }), let error = step.keystoreError else { return }
        await recordTenantError(error, for: organization, keystore: report.keystore, stored: stored)
    }

    /// Keeps `error`, a failed call through the organization's own keystore (`keystore` is the
    /// stored name of the keystore that failed), as its configuration's last error, for its
    /// administrator to see. Only KMS's own answers about the tenant's key are kept: failures
    /// of the platform's keystores, and messages the broker wrote itself (which name the
    /// platform's endpoint or files), are not the tenant's to read.
    public func recordTenantError(_ error: BrokerError, for organization: OrganizationID, keystore: String) async {
        guard let keystoreError = error.keystoreError else { return }
        await recordTenantError(keystoreError, for: organization, keystore: keystore, stored: nil)
    }

    private func recordTenantError(
        _ error: KeystoreError,
        for organization: OrganizationID,
        keystore: String,
        stored: StoredKeyConfiguration?
    ) async {
        guard config.organizations[organization] == nil, TenantKeystoreTemplate.type(ofInstanceName: keystore) != nil else { return }
        let time = now()
        let record = KeyConfigurationError(
            code: (error.backendAnswered ? error.backendCode : nil) ?? error.kind.description,
            message: (error.backendAnswered ? error.backendMessage : nil) ?? Self.tenantMessage(for: error.kind),
            at: time
        )
        // Every failed unwrap through a disabled key lands here: the same error is written at
        // most once a minute (a read costs no sync; each write is a synced commit).
        let previous: KeyConfigurationError?
        if let stored { previous = stored.lastError } else { previous = (try? await store.keyConfiguration(for: organization))??.lastError }
        if let previous, previous.code == record.code, previous.message == record.message, time.timeIntervalSince(previous.at) < 60 {
            return
        }
        try? await store.recordKeyConfigurationError(record, for: organization)
    }

    /// What a tenant reads when the backend gave no answer of its own about its key.
    static func tenantMessage(for kind: KeystoreError.Kind) -> String {
        "the platform could not complete the call to your key (\(kind)); the platform's operator sees the details"
    }
}
