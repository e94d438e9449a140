/// AWS credentials for signing. `description` never shows the secret.
public struct AWSCredentials: Sendable, CustomStringConvertible, CustomReflectable {
    /// The access key id (not secret; appears in signed requests).
    public let accessKeyID: String
    let secretAccessKey: String
    let sessionToken: String?
    /// Where the credentials came from, for messages (`environment`, `profile 'ops' in ~/.aws/credentials`).
    public let source: String

    /// Creates credentials.
    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String?, source: String) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.source = source
    }

    public var description: String { "access key \(accessKeyID) from \(source)" }

    /// `dump()` and debuggers show the key id and source, never the secret or the token.
    public var customMirror: Mirror {
        Mirror(self, children: ["accessKeyID": accessKeyID, "source": source])
    }
}
