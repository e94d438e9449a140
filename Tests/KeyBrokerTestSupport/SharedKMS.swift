import Foundation
import KeyBroker
import Testing

/// One KMS server of each kind per test process, started on first use and stopped when the
/// process exits (its control pipe closes, and the helper stops the server by PID).
enum SharedKMS {
    private static let motoResult = Result { try KMSTestServer(.motoWithAuth) }
    private static let localstackResult = Result { try KMSTestServer(.localstack) }

    static func moto() throws -> KMSTestServer { try motoResult.get() }
    static func localstack() throws -> KMSTestServer { try localstackResult.get() }

    /// Builds an `aws-kms-symmetric` keystore from YAML, as an operator would configure it.
    static func keystore(_ yaml: String, in directory: TemporaryDirectory, name: String = "kms") throws -> any Keystore {
        precondition(yaml.hasPrefix("{ "))
        let path = try directory.write("\(name)-\(UUID().uuidString).yaml", "{ name: \(name), " + yaml.dropFirst(2) + "\n")
        return try Fixtures.loader().loadCandidate(path: path).keystore
    }
}
