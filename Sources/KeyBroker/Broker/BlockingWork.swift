import Dispatch
import Foundation
import Synchronization

/// Runs work that would block a thread — CPU-heavy key generation, file I/O that may wait —
/// outside Swift's cooperative thread pool.
///
/// The cooperative pool has one thread per core. An RSA-4096 key generation takes up to a
/// second, and `open()` on a FIFO never returns until a writer appears: a few of either on
/// that pool stop every other task, the probes included, which is how one tenant could take a
/// replica out of its load balancer. Key generation gets one serial queue per core (so it
/// never uses more than the cores, and the OS still time-slices the server's threads in);
/// file I/O gets a queue of its own.
public enum BlockingWork {
    private static let cpuQueues: [DispatchQueue] = (0..<max(1, ProcessInfo.processInfo.activeProcessorCount)).map {
        DispatchQueue(label: "keybroker.cpu.\($0)", qos: .userInitiated)
    }
    private static let nextQueue = Atomic<Int>(0)
    private static let ioQueue = DispatchQueue(label: "keybroker.file-io", qos: .userInitiated, attributes: .concurrent)

    /// Runs CPU-heavy work on one of the per-core queues.
    public static func cpu<Output: Sendable, Failure: Error>(
        _ body: @escaping @Sendable () throws(Failure) -> Output
    ) async throws(Failure) -> Output {
        let turn = nextQueue.wrappingAdd(1, ordering: .relaxed).oldValue
        let queue = cpuQueues[(turn & Int.max) % cpuQueues.count]
        return try await run(on: queue, body)
    }

    /// Runs blocking file I/O on the I/O queue.
    public static func io<Output: Sendable, Failure: Error>(
        _ body: @escaping @Sendable () throws(Failure) -> Output
    ) async throws(Failure) -> Output {
        try await run(on: ioQueue, body)
    }

    private static func run<Output: Sendable, Failure: Error>(
        on queue: DispatchQueue, _ body: @escaping @Sendable () throws(Failure) -> Output
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
