import FieldSyncStore
import Foundation
import Synchronization

/// Where a sync run by the console is: what it is doing, how far along, and how the last one ended.
public struct ConsoleSyncProgress: Sendable, Equatable {
    public var text: String
    /// Bytes or revisions done and expected; a total of 0 means "not known yet".
    public var done: Int64
    public var total: Int64

    public init(text: String, done: Int64 = 0, total: Int64 = 0) {
        self.text = text
        self.done = done
        self.total = total
    }
}

/// Runs one sync of the replica with its central node, as `fieldsync sync` does, reporting progress;
/// returns the summary lines. Supplied by the command line, which knows the transport and TLS pins.
public typealias ConsoleSyncRunner =
    @Sendable (_ store: ReplicaStore, _ progress: @escaping @Sendable (ConsoleSyncProgress) -> Void) async throws -> [String]

/// The console's one sync at a time: started by a form, watched by polling, its summary kept
/// until the next one.
public final class ConsoleSyncJob: Sendable {
    public struct State: Sendable, Equatable {
        public var running = false
        public var progress = ConsoleSyncProgress(text: "not synced since the console started")
        /// The summary lines of the last sync, and whether it failed.
        public var summary: [String] = []
        public var failed = false
    }

    let state = Mutex(State())
    let runner: ConsoleSyncRunner?

    public init(runner: ConsoleSyncRunner?) { self.runner = runner }

    public var current: State { state.withLock { $0 } }

    /// Starts a sync unless one is running; false when one already was.
    func start(_ store: ReplicaStore) -> Bool {
        guard let runner else { return false }
        let started = state.withLock { state -> Bool in
            guard !state.running else { return false }
            state = State(running: true, progress: ConsoleSyncProgress(text: "connecting…"), summary: [], failed: false)
            return true
        }
        guard started else { return false }
        Task.detached { [self] in
            do {
                let lines = try await runner(store) { progress in self.state.withLock { $0.progress = progress } }
                self.state.withLock {
                    $0 = State(running: false, progress: ConsoleSyncProgress(text: "done"), summary: lines, failed: false)
                }
            } catch {
                self.state.withLock {
                    $0 = State(running: false, progress: ConsoleSyncProgress(text: "failed"), summary: ["\(error)"], failed: true)
                }
            }
        }
        return true
    }
}
