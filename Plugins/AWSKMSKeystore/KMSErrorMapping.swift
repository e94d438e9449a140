import Foundation
import KeyBroker

/// Maps KMS errors to typed keystore errors with a hint an operator can act on.
enum KMSErrorMapping {
    /// - Parameter key: the key the call named (the configured alias, or the pair's stored key ARN).
    static func keystoreError<Request, Response>(
        _ error: KMSError,
        operation: KMSOperation<Request, Response>,
        keystore: String,
        key: String,
        context: EncryptionContext?
    ) -> KeystoreError {
        let condition = context.map { ctx in
            ctx.pairs.sorted { $0.key < $1.key }.map { "kms:EncryptionContext:\($0.key) = \($0.value)" }.joined(separator: ", ")
        }
        let (kind, hint): (KeystoreError.Kind, String?)
        switch error.code {
        case "AccessDeniedException", "AccessDenied":
            (kind, hint) = (
                .denied,
                "the key policy must allow \(operation.action)" + (condition.map { " with \($0)" } ?? "")
                    + " for KeyBroker's principal; see: keybroker aws key-policy"
            )
        case "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "IncompleteSignature",
            "ExpiredTokenException", "MissingAuthenticationToken", "MissingCredentials", "InvalidSignatureException":
            (kind, hint) = (
                .denied,
                "check the AWS credentials KeyBroker uses (accessKeyId/secretAccessKey, AWS_* variables or the profile) and the server clock"
            )
        case "DisabledException", "KMSInvalidStateException", "KeyUnavailableException":
            (kind, hint) = (
                .keyUnusable, "enable the key (aws kms enable-key) or cancel its scheduled deletion (aws kms cancel-key-deletion)"
            )
        case "NotFoundException":
            (kind, hint) = (
                .keyUnusable, "check \(key): the alias or key does not exist in this account and region (keyAlias, region, endpoint)"
            )
        case "InvalidCiphertextException":
            (kind, hint) = (
                .badCiphertext,
                "the stored key is corrupt, or the encryption context differs from the one it was wrapped with (another organization?)"
            )
        case "TLSCertificateRejected":
            (kind, hint) = (
                .misconfigured,
                "the endpoint's certificate does not chain to a CA this server trusts, or does not name its host; for an endpoint behind a private CA, set caFile: (PEM CA certificates) on the keystore"
            )
        case "InvalidResponse":
            (kind, hint) = (.internalFailure, "the endpoint answered with something that is not a KMS answer; check the endpoint setting")
        case "IncorrectKeyException":
            (kind, hint) = (.wrongKey, "the ciphertext was wrapped by another KMS key than the one recorded on the pair")
        case "KeystoreBusy" where error.isTransport:  // KeyBroker's own refusal, never an endpoint's answer
            (kind, hint) = (
                .busy,
                "KMS is answering slowly; retry in a moment, or raise concurrency.maxCalls if KMS keeps up and the load is legitimate"
            )
        case _ where KMSError.throttlingCodes.contains(error.code):
            (kind, hint) = (.throttled, "KMS request quota reached; KeyBroker retried with backoff; raise the quota or spread rotations")
        case "ValidationException", "InvalidKeyUsageException", "UnsupportedOperationException", "InvalidGrantTokenException":
            (kind, hint) = (
                .misconfigured,
                operation.name == KMSOperation.generateDataKeyPair.name
                    ? "this endpoint may not support data key pairs; set generation: local" : "check the keystore configuration"
            )
        default:
            if error.isTransport || (error.status ?? 0) >= 500 || error.code == "KMSInternalException"
                || error.code == "DependencyTimeoutException"
            {
                (kind, hint) = (
                    .unreachable,
                    "KMS at \(error.isTransport ? "the configured endpoint" : "its endpoint") did not serve the request; check the endpoint and network, then retry"
                )
            } else {
                (kind, hint) = (.internalFailure, nil)
            }
        }
        let attempts = error.attempts > 1 ? " after \(error.attempts) attempts" : ""
        return KeystoreError(
            kind,
            keystore: keystore,
            message: "KMS \(operation.name) on \(key) failed\(attempts)",
            backendCode: error.code,
            backendMessage: error.message,
            hint: hint,
            // Transport failures and missing credentials are this client's words, not KMS's.
            backendAnswered: !error.isTransport && error.code != "MissingCredentials"
        )
    }
}
