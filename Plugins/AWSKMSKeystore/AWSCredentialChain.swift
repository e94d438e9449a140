import Foundation

/// The standard chain, in order: static keys from the configuration, then
/// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, then the shared
/// credentials file (`AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`) with the
/// profile from `profile:`, `AWS_PROFILE`, or `default`. A `profile:` written in the
/// configuration is an explicit choice and wins over the environment variables, as in the
/// AWS CLI.
public struct AWSCredentialChain: AWSCredentialProvider {
    let staticCredentials: AWSCredentials?
    let profile: String?
    let environment: [String: String]

    /// Creates a chain.
    /// - Parameters:
    ///   - staticCredentials: keys from the configuration, if any.
    ///   - profile: the profile named in the configuration, if any.
    ///   - environment: the process environment.
    public init(staticCredentials: AWSCredentials?, profile: String?, environment: [String: String]) {
        self.staticCredentials = staticCredentials
        self.profile = profile
        self.environment = environment
    }

    public func credentials() throws(AWSCredentialError) -> AWSCredentials {
        if let staticCredentials { return staticCredentials }
        if profile == nil, let id = environment["AWS_ACCESS_KEY_ID"], !id.isEmpty {
            guard let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty else {
                throw AWSCredentialError(description: "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not; set both")
            }
            let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: token, source: "environment")
        }
        guard let file = credentialsFile else {
            throw AWSCredentialError(
                description:
                    "no AWS credentials: none in the keystore configuration (accessKeyId/secretAccessKey), none in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and no HOME or AWS_SHARED_CREDENTIALS_FILE to find a shared credentials file"
            )
        }
        let profileName = profile ?? environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw AWSCredentialError(
                description:
                    "no AWS credentials: none in the keystore configuration (accessKeyId/secretAccessKey), none in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and no readable shared credentials file at \(file)"
            )
        }
        let sections = Self.parseINI(text)
        guard let section = sections[profileName] else {
            throw AWSCredentialError(
                description: "profile '\(profileName)' is not in \(file); profiles there: \(sections.keys.sorted().joined(separator: ", "))"
            )
        }
        guard let id = section["aws_access_key_id"], let secret = section["aws_secret_access_key"] else {
            throw AWSCredentialError(description: "profile '\(profileName)' in \(file) needs aws_access_key_id and aws_secret_access_key")
        }
        return AWSCredentials(
            accessKeyID: id,
            secretAccessKey: secret,
            sessionToken: section["aws_session_token"],
            source: "profile '\(profileName)' in \(file)"
        )
    }

    /// The shared credentials file, from the given environment only: an empty environment
    /// (candidates sent over the API) reaches no file.
    var credentialsFile: String? {
        if let file = environment["AWS_SHARED_CREDENTIALS_FILE"], !file.isEmpty { return file }
        guard let home = environment["HOME"], !home.isEmpty else { return nil }
        return home + "/.aws/credentials"
    }

    /// Parses the INI format of the shared credentials file: `[profile]` sections of
    /// `key = value` lines; `#` and `;` start comments.
    static func parseINI(_ text: String) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var current: String?
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                var name = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                if name.hasPrefix("profile ") { name = String(name.dropFirst("profile ".count)).trimmingCharacters(in: .whitespaces) }
                current = name
                sections[name, default: [:]] = sections[name] ?? [:]
            } else if let current, let equals = line.firstIndex(of: "=") {
                let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
                let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
                sections[current]?[key] = value
            }
        }
        return sections
    }
}
