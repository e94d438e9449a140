import Foundation
import KeyBroker
import Synchronization
import Testing

@Suite("Deadline: work bounded in time without trusting it to stop (LoadSensitive: timing)")
struct DeadlineLoadSensitiveTests {
    @Test("work that finishes in time gives its result")
    func inTime() async {
        let value = await Deadline.run(within: .seconds(5)) { 42 }
        #expect(value == 42)
    }

    @Test("work that ignores cancellation is not waited for: the caller gets nil at the deadline, and the work is cancelled")
    func nonCooperatingWork() async {
        let sawCancellation = Atomic(false)
        let clock = ContinuousClock()
        let start = clock.now
        let value = await Deadline.run(within: .milliseconds(200)) { () async -> Int in
            // Busy-waits for 3 s, never checking for cancellation except to note it.
            let end = ContinuousClock.now + .seconds(3)
            while ContinuousClock.now < end {
                if Task.isCancelled { sawCancellation.store(true, ordering: .relaxed) }
                try? await Task.sleep(for: .milliseconds(10))
            }
            return 1
        }
        let took = clock.now - start
        #expect(value == nil)
        #expect(took < .seconds(2), "answered at the deadline, not when the work ended: \(took)")
        try? await Task.sleep(for: .milliseconds(100))
        let cancelled = sawCancellation.load(ordering: .relaxed)
        #expect(cancelled, "the work was told to stop")
    }

    @Test("a cancelled caller gets nil at once")
    func cancelledCaller() async {
        let task = Task {
            await Deadline.run(within: .seconds(30)) { () async -> Int in
                try? await Task.sleep(for: .seconds(30))
                return 1
            }
        }
        try? await Task.sleep(for: .milliseconds(50))
        task.cancel()
        let clock = ContinuousClock()
        let start = clock.now
        #expect(await task.value == nil)
        #expect(clock.now - start < .seconds(5))
    }

    @Test("a deadline in the past still resumes the caller once, with nil or the result")
    func pastDeadline() async {
        for _ in 0..<200 {
            let value = await Deadline.run(until: .now - .seconds(1)) { 7 }
            #expect(value == nil || value == 7)
        }
    }
}
