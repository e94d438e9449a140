public import KeyBroker

extension KeyBrokerServer {
    /// The configuration sections `keybroker serve` reads: hand them to the
    /// ``KeyBroker/ConfigLoader`` so that the file's `server:`, `auth:`, `scheduler:` and
    /// `audit:` are read and checked like the core's sections.
    public static let configSections: [any ConfigSection.Type] = [
        ServerSettings.self, AuthSettings.self, SchedulerSettings.self, AuditSettings.self,
    ]
}

extension BrokerConfig {
    /// `server:`.
    public var server: ServerSettings { sections[ServerSettings.self] }
    /// `auth:`.
    public var auth: AuthSettings { sections[AuthSettings.self] }
    /// `scheduler:`.
    public var scheduler: SchedulerSettings { sections[SchedulerSettings.self] }
    /// `audit:`.
    public var audit: AuditSettings { sections[AuditSettings.self] }
}
