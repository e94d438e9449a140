import Foundation
import Testing

@testable import AWSKMSKeystore

/// The retry quota, the circuit breaker and the limit on calls in flight, on their own.
@Suite("KMS call policy: retry quota, circuit breaker, calls in flight (LoadSensitive: timing)")
struct KMSCallPolicyLoadSensitiveTests {
    static let throttled = KMSError(code: "ThrottlingException", message: "Rate exceeded", status: 400, attempts: 1)
    static let timeout = KMSError(code: "Timeout", message: "slow", status: nil, attempts: 1)

    @Test("the quota: a retry costs 5 tokens, 10 after a timeout; empty means no retry; a success refunds what its retries took, or adds 1")
    func quota() {
        let quota = KMSRetryQuota(capacity: 500)
        var granted = 0
        while quota.acquireRetry(after: Self.throttled) != nil { granted += 1 }
        #expect(granted == 100, "500 tokens at 5 a retry")
        #expect(quota.acquireRetry(after: Self.throttled) == nil)
        quota.recordSuccess(refunding: 0)
        #expect(quota.available == 1)
        quota.recordSuccess(refunding: 10)
        #expect(quota.available == 11)
        #expect(quota.acquireRetry(after: Self.timeout) == 10)
        #expect(quota.available == 1)
        for _ in 0..<1000 { quota.recordSuccess(refunding: 0) }
        #expect(quota.available == 500, "never above its capacity")
        #expect(KMSRetryQuota(capacity: 0).acquireRetry(after: Self.throttled) == nil, "0 turns retries off")
    }

    @Test(
        "the breaker: opens after the threshold of failures in a row, fails fast with the last error, lets one probe through after openFor, and closes on its success"
    )
    func breaker() {
        let breaker = KMSCircuitBreaker(settings: .init(failureThreshold: 3, openFor: .seconds(2)))
        let start = ContinuousClock.now
        for _ in 0..<2 { #expect(breaker.recordFailure(Self.throttled, now: start) == nil) }
        #expect(breaker.recordSuccess() == nil, "a success resets the count")
        for _ in 0..<2 { _ = breaker.recordFailure(Self.throttled, now: start) }
        #expect(!breaker.isOpen)
        #expect(breaker.recordFailure(Self.timeout, now: start) == .opened)
        guard case .rejected(let last, let failures, let retryIn) = breaker.admit(now: start + .seconds(1)) else {
            Issue.record("open: calls are rejected")
            return
        }
        #expect(last.code == "Timeout" && failures == 3 && retryIn == .seconds(1))
        guard case .probe = breaker.admit(now: start + .seconds(2)) else {
            Issue.record("after openFor: one probe")
            return
        }
        guard case .rejected = breaker.admit(now: start + .seconds(2)) else {
            Issue.record("while the probe is out, the others fail fast")
            return
        }
        _ = breaker.recordFailure(Self.throttled, now: start + .seconds(2))
        guard case .rejected = breaker.admit(now: start + .seconds(3)) else {
            Issue.record("a failed probe opens it again for openFor")
            return
        }
        guard case .probe = breaker.admit(now: start + .seconds(4)) else {
            Issue.record("then another probe")
            return
        }
        #expect(breaker.recordSuccess() == .closed)
        guard case .call = breaker.admit(now: start + .seconds(4)) else {
            Issue.record("closed again")
            return
        }
    }

    @Test("the limiter: at most maxCalls in flight; a waiter gets a freed slot, or false at its deadline")
    func limiter() async {
        let limiter = KMSCallLimiter(settings: .init(maxCalls: 2, maxWait: .seconds(1)))
        #expect(await limiter.acquire(waitingUntil: .now + .seconds(1)))
        #expect(await limiter.acquire(waitingUntil: .now + .seconds(1)))
        #expect(limiter.inFlight == 2)
        let clock = ContinuousClock()
        let start = clock.now
        #expect(await !limiter.acquire(waitingUntil: .now + .milliseconds(100)), "full: refused at the deadline")
        #expect(clock.now - start < .seconds(1))
        async let waiter = limiter.acquire(waitingUntil: .now + .seconds(5))
        try? await Task.sleep(for: .milliseconds(50))
        limiter.release()
        #expect(await waiter, "a released slot goes to the waiter")
        #expect(limiter.inFlight == 2)
        limiter.release()
        limiter.release()
        #expect(limiter.inFlight == 0)
    }
}
