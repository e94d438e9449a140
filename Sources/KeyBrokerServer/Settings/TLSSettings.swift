import Crypto
public import Foundation
import KeyBroker
public import NIOSSL

/// `server.tls:`: the server's certificate chain and private key, and the CA that client
/// certificates must chain to. The files are read, checked and turned into a TLS context when
/// the configuration is loaded, so `config validate` and a refused SIGHUP reload name a bad
/// file as any other mistake, and the server never starts with a context it cannot build.
public struct TLSSettings: Sendable, Hashable {
    /// The PEM certificate chain, leaf first.
    public let certificate: URL
    /// The PEM private key of the leaf certificate (mode 0600, owned by the server's user).
    public let privateKey: URL
    /// The PEM CA certificates that client certificates must chain to; `nil`: no client
    /// certificates are asked for.
    public let clientCA: URL?
    /// When the leaf certificate expires.
    public let notValidAfter: Date
    /// The server's TLS context: TLS 1.2 or later, client certificates optional but verified
    /// against ``clientCA`` when presented.
    public let context: NIOSSLContext
    /// SHA-256 over the three files' contents: a reload that changes any of them is a change.
    private let fingerprint: SHA256Digest
    /// SHA-256 of the client CA file's contents (empty without one): a connection verified
    /// under another CA than the one in force is not an identity (``TLSConnectionMark``).
    public let clientCAFingerprint: Data

    /// The largest certificate, key or CA file read (a PEM chain is a few KiB).
    static let maxFileBytes = 1024 * 1024

    /// Reads and checks the files and builds the context.
    /// - Throws: a message that names the file and says what to do.
    public init(certificate: URL, privateKey: URL, clientCA: URL?) throws(TLSFileError) {
        let certificateBytes = try Self.read(certificate, what: "certificate", secret: false)
        var keyBytes = try Self.read(privateKey, what: "private key", secret: true)
        defer { CheckedFile.wipe(&keyBytes) }
        let caBytes = try clientCA.map { url throws(TLSFileError) in try Self.read(url, what: "client CA", secret: false) }

        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(certificateBytes)
        } catch {
            throw TLSFileError(
                "certificate file '\(certificate.path)' holds no PEM certificate (\(error)); it must hold the server's certificate chain, leaf first, as -----BEGIN CERTIFICATE----- blocks"
            )
        }
        guard let leaf = chain.first else {
            throw TLSFileError(
                "certificate file '\(certificate.path)' holds no certificate; it must hold the server's certificate chain, leaf first, as -----BEGIN CERTIFICATE----- blocks"
            )
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem)
        } catch {
            throw TLSFileError(
                "private key file '\(privateKey.path)' holds no PEM private key; it must hold the unencrypted key of the certificate's leaf (-----BEGIN PRIVATE KEY-----)"
            )
        }
        var authorities: [NIOSSLCertificate] = []
        if let clientCA, let caBytes {
            do {
                authorities = try NIOSSLCertificate.fromPEMBytes(caBytes)
            } catch {
                throw TLSFileError(
                    "client CA file '\(clientCA.path)' holds no PEM certificate (\(error)); it must hold the CA certificates that issue client certificates"
                )
            }
            guard !authorities.isEmpty else {
                throw TLSFileError(
                    "client CA file '\(clientCA.path)' holds no certificate; it must hold the CA certificates that issue client certificates"
                )
            }
        }
        let expiry = Date(timeIntervalSince1970: TimeInterval(leaf.notValidAfter))

        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(key)
        )
        configuration.minimumTLSVersion = .tlsv12
        if !authorities.isEmpty {
            // Optional, not required: load balancers probe without a certificate, and token
            // clients need none. A certificate that is presented must chain to the CA and be
            // within its validity, or the handshake fails.
            configuration.certificateVerification = .optionalVerification
            configuration.trustRoots = .certificates(authorities)
            configuration.sendCANameList = true
        }
        do {
            // BoringSSL refuses a key that does not belong to the leaf certificate here.
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw TLSFileError(
                "cannot use certificate '\(certificate.path)' with private key '\(privateKey.path)': \(error); check that the key belongs to the certificate's leaf (the first certificate in the file)"
            )
        }
        var hasher = SHA256()
        for bytes in [certificateBytes, keyBytes, caBytes ?? []] {
            hasher.update(data: Data(SHA256.hash(data: bytes)))
        }
        fingerprint = hasher.finalize()
        clientCAFingerprint = caBytes.map { Data(SHA256.hash(data: $0)) } ?? Data()
        self.certificate = certificate
        self.privateKey = privateKey
        self.clientCA = clientCA
        notValidAfter = expiry
    }

    /// Why the certificate cannot serve at `time`, or `nil` while it is valid.
    public func expiredMessage(at time: Date) -> String? {
        guard notValidAfter <= time else { return nil }
        return
            "the certificate in '\(certificate.path)' expired on \(notValidAfter.formatted(.iso8601)); every client refuses it. Install a renewed certificate and key, then reload (SIGHUP)"
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.certificate == rhs.certificate && lhs.privateKey == rhs.privateKey && lhs.clientCA == rhs.clientCA
            && lhs.fingerprint == rhs.fingerprint
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(certificate)
        hasher.combine(fingerprint.withUnsafeBytes { Data($0) })
    }

    /// Reads a regular file of at most ``maxFileBytes``; a `secret` one must be readable by
    /// its owner only and belong to the server's user, like master key files.
    static func read(_ file: URL, what: String, secret: Bool) throws(TLSFileError) -> [UInt8] {
        do {
            return try CheckedFile.read(file, limit: maxFileBytes, secret: secret)
        } catch {
            switch error {
            case .missing:
                throw TLSFileError("\(what) file '\(file.path)' does not exist")
            case .notRegular:
                throw TLSFileError(
                    "\(what) file '\(file.path)' is not a regular file (a FIFO, device or directory); point it at the PEM file"
                )
            case .tooLarge:
                throw TLSFileError("\(what) file '\(file.path)' is larger than \(maxFileBytes / 1024) KiB; it must be a PEM file")
            case .unreadable, .readableByOthers, .wrongOwner:
                throw TLSFileError(CheckedFile.message(error, what: "\(what) file", file: file) ?? "")
            }
        }
    }
}

/// Why a TLS file cannot be used: a message for the operator, naming the file.
public struct TLSFileError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}
