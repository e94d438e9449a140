import Foundation
import KeyBroker

/// Progress on standard error when it is a terminal: bytes, rate and time left.
enum ProgressLine {
    private static let start = Date()
    nonisolated(unsafe) private static var lastPrint = Date.distantPast
    nonisolated(unsafe) private static var printed = false

    static func make(verb: String) -> RecordingFiles.Progress? {
        guard isatty(STDERR_FILENO) == 1 else { return nil }
        return { done, total in
            let now = Date()
            guard now.timeIntervalSince(lastPrint) >= 0.25 || done == total else { return }
            lastPrint = now
            printed = true
            let elapsed = max(now.timeIntervalSince(start), 0.001)
            let rate = Double(done) / elapsed
            var line = "\(verb) \(format(Double(done)))"
            if let total, total > 0 {
                let left = rate > 0 ? Double(total - done) / rate : 0
                line +=
                    " of \(format(Double(total))) (\(Int(Double(done) * 100 / Double(total)))%), \(format(rate))/s, \(Int(left.rounded()))s left"
            } else {
                line += ", \(format(rate))/s"
            }
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
        }
    }

    static func finish() {
        if printed { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    private static func format(_ bytes: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = bytes
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(Int(value)) B" : String(format: "%.1f %@", value, units[unit])
    }
}
