public import KeyBroker

/// `scheduler:`: automatic rotation in `keybroker serve`.
public struct SchedulerSettings: ConfigSection {
    public static let key = "scheduler"
    public static let defaultValue = SchedulerSettings()

    /// Whether the server rotates on its own.
    public var enabled = true
    /// How often due organizations are looked for.
    public var interval: Duration = .seconds(60)
    /// How many rotations run at once.
    public var concurrency = 4
    /// How many key-pair generations per second one keystore receives at most.
    public var perKeystoreRate = 5.0
    /// The lowest `perKeystoreRate`: one generation per 1000 s.
    public static let minimumRate = 0.001
    /// The highest `perKeystoreRate`.
    public static let maximumRate = 1000.0
    /// The longest wait before a failed rotation is tried again (backoff doubles up to it).
    public var maxRetryDelay: Duration = .seconds(3600)

}

extension SchedulerSettings {
    public static func read(_ node: ConfigNode, context: PluginContext) -> SchedulerSettings {
        var settings = SchedulerSettings.defaultValue
        guard let mapping = node.mapping() else { return settings }
        defer { mapping.reportUnknownKeys() }
        if let value = mapping["enabled"]?.bool() { settings.enabled = value }
        if let value = mapping["interval"]?.duration(in: .seconds(1)...(.seconds(86_400))) { settings.interval = value }
        if let value = mapping["concurrency"]?.integer(in: 1...64) { settings.concurrency = value }
        if let node = mapping["perKeystoreRate"], let text = node.string() {
            // At least one generation per 1000 s: a slower rate would stall rotation for days,
            // and the spacing it implies must fit the clock's arithmetic.
            if let rate = Double(text), rate >= SchedulerSettings.minimumRate, rate <= SchedulerSettings.maximumRate {
                settings.perKeystoreRate = rate
            } else {
                node.error(
                    "'\(node.path)' must be a number of generations per second from \(SchedulerSettings.minimumRate) (one every 1000 s) to \(Int(SchedulerSettings.maximumRate)), found '\(text)'"
                )
            }
        }
        if let value = mapping["maxRetryDelay"]?.duration(in: .seconds(1)...(.seconds(86_400))) { settings.maxRetryDelay = value }
        return settings
    }
}
