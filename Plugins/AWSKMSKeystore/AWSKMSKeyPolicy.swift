import Foundation
public import KeyBroker

/// The key-policy statements that let KeyBroker use a customer's KMS key for exactly the
/// configured organizations, and nothing more.
public enum AWSKMSKeyPolicy {
    /// The actions a generation mode needs on the key, beside `kms:DescribeKey`.
    public static func actions(for generation: AWSKMSKeystore.Generation) -> [String] {
        switch generation {
        case .dataKeyPair: [KMSOperation.generateDataKeyPair.action, KMSOperation.decrypt.action]
        case .local: [KMSOperation.encrypt.action, KMSOperation.decrypt.action]
        }
    }

    /// Key-policy statements as a JSON array, ready to add to the key's policy.
    /// - Parameters:
    ///   - principal: the IAM principal KeyBroker runs as (`arn:aws:iam::<account>:role/…`, or the account root).
    ///   - generation: the keystore's generation mode.
    ///   - contextKey: the encryption-context key the organization id is bound under.
    ///   - organizations: the organizations the key may serve.
    public static func statements(
        principal: String,
        generation: AWSKMSKeystore.Generation,
        contextKey: String,
        organizations: [OrganizationID]
    ) -> String {
        let statements: [[String: Any]] = [
            [
                "Sid": "KeyBrokerDescribeKey",
                "Effect": "Allow",
                "Principal": ["AWS": principal],
                "Action": KMSOperation.describeKey.action,
                "Resource": "*",
            ],
            [
                "Sid": "KeyBrokerWrapOrganizationKeys",
                "Effect": "Allow",
                "Principal": ["AWS": principal],
                "Action": actions(for: generation),
                "Resource": "*",
                "Condition": [
                    "StringEquals": ["kms:EncryptionContext:\(contextKey)": organizations.map(\.rawValue).sorted()],
                    "ForAllValues:StringEquals": ["kms:EncryptionContextKeys": [contextKey]],
                ],
            ],
        ]
        // Strings, arrays and dictionaries only: serialization cannot fail, but is not trusted not to.
        guard
            let data = try? JSONSerialization.data(
                withJSONObject: statements,
                options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            )
        else { return "[]" }
        return String(decoding: data, as: UTF8.self)
    }
}
