package import Foundation
package import KeyBroker

/// Records for store tests.
package enum StoreSamples {
    /// A pair of `organization` with a real RSA-2048 public key (shared by all samples).
    package static func record(
        for organization: OrganizationID,
        keystore: String = "local",
        type: String = "none",
        createdAt: Date = Date()
    ) throws -> KeyPairRecord {
        KeyPairRecord(
            id: UUID(),
            organization: organization,
            keystoreName: keystore,
            keystoreType: type,
            backendKeyReference: nil,
            spec: .rsa2048,
            publicKeyDER: try publicKey.get(),
            wrappedPrivateKey: Data((0..<64).map { _ in UInt8.random(in: 0...255) }),
            encryptionContext: .organization(organization),
            createdAt: Date(timeIntervalSince1970: (createdAt.timeIntervalSince1970 * 1_000_000).rounded() / 1_000_000),
            reason: .manual,
            requestedBy: "conformance"
        )
    }

    private static let publicKey = Result { try PrivateKeyMaterial(generating: .rsa2048).publicKeyDER }
}

extension OrganizationID {
    /// An organization id for tests: a wrong literal is a test failure, not a trap.
    package static func checked(_ value: String) throws -> OrganizationID {
        guard let id = OrganizationID(value) else { throw ConformanceError(OrganizationID.invalidMessage(value)) }
        return id
    }
}
