/// A KMS key identifier as configured: an alias ARN or a key ARN (single- or multi-Region).
public struct KMSKeyARN: Sendable, Hashable, CustomStringConvertible {
    /// What the ARN names.
    public enum Resource: Sendable, Hashable {
        /// `alias/<name>`.
        case alias(String)
        /// `key/<id>`; multi-Region ids start with `mrk-`.
        case key(String)
    }

    /// `aws`, `aws-cn`, `aws-us-gov`.
    public let partition: String
    /// The region in the ARN.
    public let region: String
    /// The 12-digit account id.
    public let account: String
    /// The alias or key.
    public let resource: Resource

    /// The form operators must write, for error messages.
    public static let expectedShape =
        "arn:aws:kms:{region}:{accountId}:alias/{alias} (or a key ARN arn:aws:kms:{region}:{accountId}:key/{keyId}, including multi-Region mrk-… ids)"

    /// Whether this names an alias rather than a key.
    public var resourceIsAlias: Bool {
        if case .alias = resource { return true }
        return false
    }

    /// Whether this is a multi-Region key (its replicas share the key id in every region).
    public var isMultiRegion: Bool {
        if case .key(let id) = resource { return id.hasPrefix("mrk-") }
        return false
    }

    /// Parses an ARN, returning `nil` when it is not of ``expectedShape``.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 6, parts[0] == "arn", ["aws", "aws-cn", "aws-us-gov"].contains(parts[1]), parts[2] == "kms",
            Self.isRegion(parts[3]), parts[4].count == 12, parts[4].allSatisfy(\.isASCIIDigit)
        else { return nil }
        let resource = parts[5]
        if resource.hasPrefix("alias/") {
            let name = resource.dropFirst("alias/".count)
            guard (1...250).contains(name.count),
                name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "/_-".contains($0)) })
            else { return nil }
            self.resource = .alias(String(name))
        } else if resource.hasPrefix("key/") {
            let id = String(resource.dropFirst("key/".count))
            guard Self.isKeyID(id) else { return nil }
            self.resource = .key(id)
        } else {
            return nil
        }
        partition = parts[1]
        region = parts[3]
        account = parts[4]
    }

    private init(partition: String, region: String, account: String, resource: Resource) {
        self.partition = partition
        self.region = region
        self.account = account
        self.resource = resource
    }

    /// The same key in another region (for the replica of a multi-Region key).
    public func inRegion(_ region: String) -> KMSKeyARN {
        KMSKeyARN(partition: partition, region: region, account: account, resource: resource)
    }

    public var description: String {
        switch resource {
        case .alias(let name): "arn:\(partition):kms:\(region):\(account):alias/\(name)"
        case .key(let id): "arn:\(partition):kms:\(region):\(account):key/\(id)"
        }
    }

    static func isRegion(_ text: String) -> Bool {
        let pieces = text.split(separator: "-", omittingEmptySubsequences: false)
        return pieces.count >= 3 && pieces.allSatisfy { !$0.isEmpty && $0.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber) } }
    }

    private static func isKeyID(_ id: String) -> Bool {
        let hex = { (text: Substring) in text.allSatisfy { $0.isHexDigit && !$0.isUppercase } }
        if id.hasPrefix("mrk-") {
            let rest = id.dropFirst(4)
            return rest.count == 32 && hex(rest)
        }
        let groups = id.split(separator: "-", omittingEmptySubsequences: false)
        return groups.map(\.count) == [8, 4, 4, 4, 12] && groups.allSatisfy(hex)
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
