import Dispatch
import Foundation
import Synchronization

/// Runs work that would block a thread — CPU-heavy key generation, file I/O that may wait —
/// outside Swift's cooperative thread pool.
///
/// The cooperative pool has one thread per core. An RSA-4096 key generation takes up to a
/// second, an RSA decryption milliseconds, and `open()` on a FIFO never returns until a writer
/// appears: a few of any of them on that pool stop every other task, the probes included,
/// which is how one tenant could take a replica out of its load balancer. CPU work gets one
/// serial queue per core and lane (so it never uses more than the cores, and the OS still
/// time-slices the server's threads in); file I/O gets a queue of its own. In `keybroker`,
/// the cooperative pool *is* NIO's event loops (see `KeyBrokerCommand.main`), so work that
/// blocks there would also stall every connection on that loop.
public enum BlockingWork {
    /// Which queues CPU work runs on. Key generation (up to a second) and decryption
    /// (milliseconds, on the unwrap path) have queues of their own, so that an unwrap never
    /// waits behind a key generation.
    public enum Lane: Sendable {
        case keyGeneration, decryption
    }

    private static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
    private static let generationQueues = (0..<cores).map { DispatchQueue(label: "keybroker.keygen.\($0)", qos: .userInitiated) }
    private static let decryptionQueues = (0..<cores).map { DispatchQueue(label: "keybroker.decrypt.\($0)", qos: .userInitiated) }
    private static let nextQueue = Atomic<Int>(0)
    private static let ioQueue = DispatchQueue(label: "keybroker.file-io", qos: .userInitiated, attributes: .concurrent)

    /// Runs CPU-heavy work on one of the lane's per-core queues.
    public static func cpu<Output: Sendable, Failure: Error>(
        _ lane: Lane = .keyGeneration,
        _ body: @escaping @Sendable () throws(Failure) -> Output
    ) async throws(Failure) -> Output {
        let queues = lane == .keyGeneration ? generationQueues : decryptionQueues
        let turn = nextQueue.wrappingAdd(1, ordering: .relaxed).oldValue
        return try await run(on: queues[(turn & Int.max) % queues.count], body)
    }

    /// Runs blocking file I/O on the I/O queue.
    public static func io<Output: Sendable, Failure: Error>(
        _ body: @escaping @Sendable () throws(Failure) -> Output
    ) async throws(Failure) -> Output {
        try await run(on: ioQueue, body)
    }

    private static func run<Output: Sendable, Failure: Error>(
        on queue: DispatchQueue,
        _ body: @escaping @Sendable () throws(Failure) -> Output
    ) async throws(Failure) -> Output {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Output, Failure>, Never>) in
            queue.async {
                do throws(Failure) {
                    continuation.resume(returning: .success(try body()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }
}
