import FieldSyncProtocol
import FieldSyncServer
import FieldSyncStore
import Foundation
import Hummingbird
import Logging

/// A real central node on 127.0.0.1 and a port the system picked, running in this process.
public final class LiveServer: Sendable {
    public let port: Int
    public let store: ReplicaStore
    let task: Task<Void, any Error>

    public var url: String { "http://127.0.0.1:\(port)" }

    /// Starts a server over the store at `path` (created when missing) and waits until it listens.
    public static func start(storePath: String) async throws -> LiveServer {
        let store =
            FileManager.default.fileExists(atPath: storePath)
            ? try ReplicaStore.open(at: storePath, access: .pool)
            : try ReplicaStore.create(at: storePath, name: "central", now: 0, access: .pool)
        var logger = Logger(label: "fieldsync.test-server")
        logger.logLevel = .warning
        let (portStream, portContinuation) = AsyncStream<Int>.makeStream()
        let app = buildApplication(storage: SQLiteSyncStorage(replica: store), configuration: ServerConfiguration(host: "127.0.0.1", port: 0), logger: logger) { port in
            portContinuation.yield(port)
        }
        let task = Task { try await app.run() }
        var iterator = portStream.makeAsyncIterator()
        guard let port = await iterator.next() else { throw CancellationError() }
        return LiveServer(port: port, store: store, task: task)
    }

    init(port: Int, store: ReplicaStore, task: Task<Void, any Error>) {
        self.port = port
        self.store = store
        self.task = task
    }

    /// Stops the server and waits for it to finish.
    public func stop() async {
        task.cancel()
        _ = try? await task.value
    }
}
