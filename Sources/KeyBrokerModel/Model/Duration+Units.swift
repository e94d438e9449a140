package import Foundation

extension Duration {
    /// The duration in seconds.
    package var seconds: TimeInterval {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    /// The duration in milliseconds.
    package var milliseconds: Double {
        Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15
    }

    /// The duration as an operator reads it in a message: `850 ms`, `2 s`, `1.5 s` (rather
    /// than `Duration`'s `1.500000000 seconds`).
    package var readable: String {
        guard abs(self.milliseconds) < 1e12 else { return String(format: "%.0f s", seconds) }
        let milliseconds = Int(self.milliseconds.rounded())
        if milliseconds < 1000 { return "\(milliseconds) ms" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000) s" }
        return String(format: "%.1f s", Double(milliseconds) / 1000)
    }
}
