import Foundation
public import KeyBroker
import NIOSSL

/// The `aws-kms-symmetric` keystore plugin: the organization's own AWS KMS symmetric key
/// wraps its private keys, with encryption context `{<contextKey>: <organization id>}`.
///
/// ```yaml
/// keystores:
///   acme-kms:
///     type: aws-kms-symmetric
///     keyAlias: arn:aws:kms:eu-west-1:111122223333:alias/recordings
///     region: eu-west-1
///     contextKey: organization-id       # what the key policy conditions on
///     generation: data-key-pair         # or local
/// ```
public enum AWSKMSKeystorePlugin: KeystorePlugin {
    public static let type = "aws-kms-symmetric"

    /// A tenant brings its own key: the alias ARN (or key ARN) of its KMS key.
    public static let tenantKeys = ["keyAlias"]

    /// A multi-Region key: it has a replica in any home region the template names, so the
    /// template's own settings decide whether it loads.
    public static func tenantPlaceholders(template: ConfigMapping) -> [String: String] {
        ["keyAlias": "arn:aws:kms:us-east-1:000000000000:key/mrk-00000000000000000000000000000000"]
    }

    public static func make(name: String, settings: ConfigMapping, context: PluginContext) -> (any Keystore)? {
        // Every key is read and checked before any early return, so all mistakes are reported at once.
        let aliasNode = settings.required("keyAlias", example: "arn:aws:kms:eu-west-1:111122223333:alias/recordings")
        let regionNode = settings.required("region", example: "eu-west-1")
        let generation = settings["generation"]?.value(of: AWSKMSKeystore.Generation.self) ?? .dataKeyPair
        let endpointNode = settings["endpoint"]
        // The server's own AWS identity must not sign requests to a host a caller picked, nor
        // read a credential profile a caller named. (A refusal is recorded as an error, which
        // makes the loader drop the instance.)
        context.allowsFromFileOnly(endpointNode, because: "the server would sign requests to a host the caller picked")
        context.allowsFromFileOnly(settings["profile"], because: "it names a credential profile on the server")
        let caFileNode = settings["caFile"]
        context.allowsFromFileOnly(caFileNode, because: "it names a file on the server")
        let authorities = caFileNode.flatMap { readAuthorities($0, context: context) }
        // Empty values count as absent, so that `${VAR:-}` can leave a credential unset.
        func optional(_ key: String) -> (ConfigNode, String)? {
            guard let node = settings[key], let value = node.string(), !value.isEmpty else { return nil }
            return (node, value)
        }
        let profile = optional("profile")?.1
        let accessKeyNode = optional("accessKeyId")?.0
        let accessKey = optional("accessKeyId")?.1
        let secret = optional("secretAccessKey")
        let secretKey = secret?.1
        let sessionToken = optional("sessionToken")?.1
        var retry = KMSRetryPolicy.default
        if let node = settings["requestTimeout"], let value = node.duration(in: .milliseconds(100)...(.seconds(120))) {
            retry.requestTimeout = value
        }
        if let node = settings["totalTimeout"], let value = node.duration(in: .milliseconds(100)...(.seconds(600))) {
            retry.totalTimeout = value
        }
        if retry.requestTimeout > retry.totalTimeout, let node = settings["requestTimeout"] {
            node.error(
                "'\(node.path)' (\(retry.requestTimeout)) is longer than totalTimeout (\(retry.totalTimeout)); a request cannot outlast its call"
            )
        }
        if let retries = settings["retries"]?.mapping() {
            if let value = retries["maxAttempts"]?.integer(in: 1...10) { retry.maxAttempts = value }
            if let value = retries["baseDelay"]?.duration(in: .milliseconds(1)...(.seconds(10))) { retry.baseDelay = value }
            if let value = retries["maxDelay"]?.duration(in: .milliseconds(1)...(.seconds(60))) { retry.maxDelay = value }
            if let value = retries["quota"]?.integer(in: 0...1_000_000) { retry.quota = value }
            retries.reportUnknownKeys()
        }
        var breaker = KMSCircuitBreaker.Settings.default
        if let settings = settings["circuitBreaker"]?.mapping() {
            if let value = settings["failureThreshold"]?.integer(in: 1...1000) { breaker.failureThreshold = value }
            if let value = settings["openFor"]?.duration(in: .milliseconds(100)...(.seconds(300))) { breaker.openFor = value }
            settings.reportUnknownKeys()
        }
        var concurrency = KMSCallLimiter.Settings.default
        if let settings = settings["concurrency"]?.mapping() {
            if let value = settings["maxCalls"]?.integer(in: 1...10_000) { concurrency.maxCalls = value }
            if let value = settings["maxWait"]?.duration(in: .zero...(.seconds(60))) { concurrency.maxWait = value }
            settings.reportUnknownKeys()
        }

        var staticCredentials: AWSCredentials?
        if accessKey == nil, let (node, _) = secret {
            node.error("'\(node.path)' needs accessKeyId beside it")
        }
        if accessKey == nil, let node = settings["sessionToken"], optional("sessionToken") != nil {
            node.error("'\(node.path)' needs accessKeyId and secretAccessKey beside it: a session token belongs to a key pair")
        }
        if context.origin == .api, accessKey == nil, secret == nil {
            // Said now rather than as a signing failure at the first call: a candidate's chain
            // has no environment and no profile, so without its own keys it cannot sign at all.
            settings.node.error(
                "a keystore sent over the API needs its own accessKeyId and secretAccessKey: the server's AWS identity never signs for a candidate"
            )
        }
        if let accessKey, let accessKeyNode {
            if let secretKey {
                staticCredentials = AWSCredentials(
                    accessKeyID: accessKey,
                    secretAccessKey: secretKey,
                    sessionToken: sessionToken,
                    source: "keystore '\(name)' configuration"
                )
            } else {
                accessKeyNode.error(
                    "'\(accessKeyNode.path)' needs secretAccessKey beside it (write both with ${VAR} references, not literal secrets)"
                )
            }
        }
        let key = aliasNode.flatMap { node in regionNode.flatMap { homeRegion(of: node, region: $0) } }
        let endpoint: URL? = if let endpointNode { url(of: endpointNode) } else { key.flatMap(defaultEndpoint(for:)) }
        guard let key else { return nil }
        if authorities != nil, let endpoint, endpoint.scheme != "https", let caFileNode {
            caFileNode.error("'\(caFileNode.path)' applies to an https endpoint; '\(endpoint.absoluteString)' is plain http")
        }
        guard let endpoint else {
            if endpointNode == nil { settings.node.error("no KMS endpoint can be formed for region \(key.region); set 'endpoint'") }
            return nil
        }
        let chain = AWSCredentialChain(staticCredentials: staticCredentials, profile: profile, environment: context.environment)
        let client = KMSClient(
            endpoint: endpoint,
            region: key.region,
            credentials: chain,
            retry: retry,
            breaker: breaker,
            concurrency: concurrency,
            metrics: KMSClientMetrics(keystore: name, factory: context.metrics),
            http: authorities.map(KMSClient.http(trusting:)) ?? KMSClient.sharedHTTP
        )
        return AWSKMSKeystore(name: name, key: key, generation: generation, client: client)
    }

    /// The configured key in the home region: as written when it is there, the home
    /// region's replica for a multi-Region key, otherwise an error.
    private static func homeRegion(of aliasNode: ConfigNode, region regionNode: ConfigNode) -> KMSKeyARN? {
        guard let aliasText = aliasNode.nonEmptyString(), let region = regionNode.nonEmptyString() else { return nil }
        guard KMSKeyARN.isRegion(region) else {
            regionNode.error("'\(regionNode.path)' must be an AWS region such as eu-west-1, found '\(region)'")
            return nil
        }
        guard let key = KMSKeyARN(aliasText) else {
            aliasNode.error("'\(aliasNode.path)' must be \(KMSKeyARN.expectedShape), found '\(aliasText)'")
            return nil
        }
        if key.region == region { return key }
        if key.isMultiRegion { return key.inRegion(region) }
        aliasNode.error(
            "'\(aliasNode.path)' is in region \(key.region), but the home region is \(region); use a key in \(region), or a multi-Region key (key/mrk-…) that has a replica in \(region)"
        )
        return nil
    }

    /// `caFile:`: PEM CA certificates that the endpoint's certificate must chain to, instead
    /// of the system's (an endpoint behind a private CA). Certificates are always verified.
    private static func readAuthorities(_ node: ConfigNode, context: PluginContext) -> [NIOSSLCertificate]? {
        guard let path = node.nonEmptyString() else { return nil }
        let file = context.resolvePath(path)
        // A regular file of PEM size only: a FIFO would hang the load (and every reload).
        let bytes: [UInt8]
        do {
            bytes = try CheckedFile.read(file, limit: 1024 * 1024, secret: false)
        } catch {
            let reason =
                switch error {
                case .missing: "it does not exist"
                case .notRegular: "it is not a regular file (a FIFO, device or directory)"
                case .tooLarge: "it is larger than 1 MiB"
                case .unreadable(let why): "cannot read it: \(why)"
                case .readableByOthers, .wrongOwner: "it cannot be read"  // not checked for a public file
                }
            node.error("'\(node.path)' must name a PEM file of CA certificates; '\(file.path)': \(reason)")
            return nil
        }
        let authorities = (try? NIOSSLCertificate.fromPEMBytes(bytes)) ?? []
        guard !authorities.isEmpty else {
            node.error(
                "'\(node.path)': '\(file.path)' holds no PEM certificate; it must hold the CA certificates that issued the KMS endpoint's certificate"
            )
            return nil
        }
        return authorities
    }

    private static func url(of node: ConfigNode) -> URL? {
        guard let text = node.nonEmptyString() else { return nil }
        guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            node.error("'\(node.path)' must be an http(s) URL such as https://kms.eu-west-1.amazonaws.com, found '\(text)'")
            return nil
        }
        return url
    }

    /// The regional endpoint; `nil` only if the validated region still made no URL.
    private static func defaultEndpoint(for key: KMSKeyARN) -> URL? {
        let suffix = key.partition == "aws-cn" ? "amazonaws.com.cn" : "amazonaws.com"
        return URL(string: "https://kms.\(key.region).\(suffix)")
    }
}
