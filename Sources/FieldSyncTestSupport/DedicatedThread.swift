import Foundation

/// Blocking work (waiting for a child process, reading its pipes to the end) on an OS thread of its
/// own, awaited from async code.
///
/// Neither Swift concurrency's pool nor Dispatch's global queues may be used for it: on Linux they
/// share one small set of threads per priority, which grows by about one thread a second when work
/// blocks, so a few dozen blocked waits starve every task in the process (an in-process server's
/// requests and GRDB's queues included) for tens of seconds.
public enum DedicatedThread {
    /// Runs `body` on a new thread and returns what it returned or throws what it threw.
    public static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
        }
    }

    /// Runs `body` on a new thread and returns what it returned.
    public static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: body()) }
        }
    }
}
