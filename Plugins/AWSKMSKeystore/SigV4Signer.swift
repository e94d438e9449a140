import Crypto
public import Foundation
import KeyBroker

/// AWS Signature Version 4 (HMAC-SHA256), for the few requests KeyBroker makes.
///
/// It returns the headers to add; it never logs, and nothing it returns contains the secret.
public struct SigV4Signer: Sendable {
    /// The signing name of the service (`kms`).
    public let service: String
    /// The region of the endpoint.
    public let region: String

    /// Creates a signer.
    public init(service: String, region: String) {
        self.service = service
        self.region = region
    }

    /// Signs a request.
    /// - Parameters:
    ///   - method: `GET`, `POST`, …
    ///   - path: the URI path (`/`).
    ///   - query: the query string as sent, without `?` (may be empty).
    ///   - headers: the headers to sign; must include `Host`.
    ///   - body: the payload.
    ///   - credentials: the key to sign with.
    ///   - date: the signing time.
    /// - Returns: `X-Amz-Date`, `X-Amz-Security-Token` (with a session token) and `Authorization`.
    public func sign(
        method: String,
        path: String,
        query: String = "",
        headers: [(String, String)],
        body: Data,
        credentials: AWSCredentials,
        date: Date
    ) -> [(String, String)] {
        let amzDate = Self.timestamp(date)
        let day = String(amzDate.prefix(8))
        var added = [("X-Amz-Date", amzDate)]
        if let token = credentials.sessionToken { added.append(("X-Amz-Security-Token", token)) }

        var canonical: [String: String] = [:]
        for (name, value) in headers + added {
            let key = name.lowercased()
            let trimmed = Self.collapseSpaces(value)
            canonical[key] = canonical[key].map { "\($0),\(trimmed)" } ?? trimmed
        }
        let sortedHeaders = canonical.sorted { $0.key < $1.key }
        let signedHeaders = sortedHeaders.map(\.key).joined(separator: ";")
        let canonicalRequest = [
            method,
            Self.canonicalPath(path),
            Self.canonicalQuery(query),
            sortedHeaders.map { "\($0.key):\($0.value)\n" }.joined(),
            signedHeaders,
            Self.hex(SHA256.hash(data: body)),
        ].joined(separator: "\n")
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = [
            "AWS4-HMAC-SHA256", amzDate, scope, Self.hex(SHA256.hash(data: Data(canonicalRequest.utf8))),
        ].joined(separator: "\n")

        var key = SymmetricKey(data: Data("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key))
        added.append(
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
            )
        )
        return added
    }

    static func timestamp(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(
            format: "%04d%02d%02dT%02d%02d%02dZ",
            c.year ?? 0,
            c.month ?? 0,
            c.day ?? 0,
            c.hour ?? 0,
            c.minute ?? 0,
            c.second ?? 0
        )
    }

    private static func hex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        Data(bytes).hexEncodedString()
    }

    private static func collapseSpaces(_ value: String) -> String {
        value.trimmingCharacters(in: .whitespaces).split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }

    private static let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~".utf8)

    /// RFC 3986 percent-encoding of everything but unreserved characters.
    static func encode(_ text: String) -> String {
        text.utf8.map { unreserved.contains($0) ? String(UnicodeScalar($0)) : String(format: "%%%02X", $0) }.joined()
    }

    private static func canonicalPath(_ path: String) -> String {
        guard !path.isEmpty else { return "/" }
        return path.split(separator: "/", omittingEmptySubsequences: false).map { encode(String($0).removingPercentEncoding ?? String($0)) }
            .joined(separator: "/")
    }

    private static func canonicalQuery(_ query: String) -> String {
        guard !query.isEmpty else { return "" }
        var pairs: [(name: String, value: String)] = []
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = encode(String(parts[0]).removingPercentEncoding ?? String(parts[0]))
            let value = parts.count > 1 ? encode(String(parts[1]).removingPercentEncoding ?? String(parts[1])) : ""
            pairs.append((name, value))
        }
        pairs.sort { $0.name == $1.name ? $0.value < $1.value : $0.name < $1.name }
        return pairs.map { "\($0.name)=\($0.value)" }.joined(separator: "&")
    }
}
