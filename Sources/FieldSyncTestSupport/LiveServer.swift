import FieldSyncBlobs
import FieldSyncClient
import FieldSyncProtocol
import FieldSyncServer
import FieldSyncStore
import Foundation
import Hummingbird
import Logging
import NIOCore

/// A real central node on 127.0.0.1 and a port the system picked, running in this process.
public final class LiveServer: Sendable {
    public let port: Int
    public let store: ReplicaStore
    let task: Task<Void, any Error>

    public var url: String { "http://127.0.0.1:\(port)" }

    /// Starts a server over the store at `path` (created when missing) and waits until it listens.
    /// Attachment bytes go to `STORE.blobs`, with the given limits.
    public static func start(
        storePath: String, maximumAttachmentSize: Int64 = AttachmentConfiguration.defaultMaximumSize, attachmentQuota: Int64? = nil,
        uploadExpiry: Double = AttachmentConfiguration.defaultUploadExpiry
    ) async throws -> LiveServer {
        let store =
            FileManager.default.fileExists(atPath: storePath)
            ? try ReplicaStore.open(at: storePath, access: .pool)
            : try ReplicaStore.create(at: storePath, name: "central", now: 0, access: .pool)
        var logger = Logger(label: "fieldsync.test-server")
        logger.logLevel = .warning
        let (portStream, portContinuation) = AsyncStream<Int>.makeStream()
        let app = try buildApplication(
            storage: SQLiteSyncStorage(replica: store),
            configuration: ServerConfiguration(
                host: "127.0.0.1", port: 0,
                attachments: AttachmentConfiguration(
                    blobs: try FileBlobStorage(root: storePath + ".blobs"), maximumSize: maximumAttachmentSize, quota: attachmentQuota,
                    uploadExpiry: uploadExpiry)), logger: logger
        ) { port in
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

extension LiveServer {
    /// Creates an account on the server's store and enrols `replica` with it over HTTP, as
    /// `fieldsync server add-user` and `fieldsync enroll` do.
    public func enrol(_ replica: ReplicaStore, as user: String, role: Role = .documenter) async throws {
        try await Enrolling.enrol(replica, as: user, role: role, serverStore: store, url: url)
    }
}

/// Enrolment for tests, through the real code path.
public enum Enrolling {
    public static func issueCode(on serverStore: ReplicaStore, for user: String, role: Role, expiresIn milliseconds: Int64 = 3_600_000)
        throws -> String
    {
        let code = Secrets.newEnrolmentCode()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try serverStore.addAccount(name: user, role: role, codeHash: Secrets.hash(code), expires: now + milliseconds, now: now)
        return code
    }

    /// The same for a central node on any storage (a PostgreSQL database, say).
    public static func issueCode(on storage: any AccountStorage, for user: String, role: Role) async throws -> String {
        let code = Secrets.newEnrolmentCode()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try await storage.addAccount(name: user, role: role, codeHash: Secrets.hash(code), expires: now + 3_600_000, now: now)
        return code
    }

    public static func enrol(_ replica: ReplicaStore, as user: String, role: Role, serverStore: ReplicaStore, url: String) async throws {
        try await enrol(replica, code: try issueCode(on: serverStore, for: user, role: role), url: url)
    }

    /// Enrols `replica` with the central node at `url` using `code`, over HTTP.
    public static func enrol(_ replica: ReplicaStore, code: String, url: String) async throws {
        let node = try replica.identity().node
        let transport = try HTTPSyncTransport(baseURL: url, node: node, timeout: testTimeout)
        do {
            let response = try await transport.enrol(
                EnrolRequest(code: code, node: node, publicKey: try replica.publicKey(), nonce: try replica.nodeNonce(node)))
            await transport.shutdown()
            try replica.saveEnrolment(Enrolment(server: url, token: response.token, user: response.user, role: response.role), now: 0)
        } catch {
            await transport.shutdown()
            throw error
        }
    }

    /// Enrols `replica` directly on a server store (no HTTP) and returns its bearer token, for
    /// in-process router tests.
    public static func token(for replica: ReplicaStore, on serverStore: ReplicaStore, user: String, role: Role = .documenter) async throws
        -> String
    {
        let code = try issueCode(on: serverStore, for: user, role: role)
        let token = Secrets.newToken()
        _ = try await SQLiteSyncStorage(replica: serverStore).redeem(
            codeHash: Secrets.hash(code), node: try replica.identity().node, publicKey: try replica.publicKey(),
            tokenHash: Secrets.hash(token), repeatable: false, now: 1)
        return token
    }

    /// An authenticated transport for an enrolled replica.
    public static func transport(for replica: ReplicaStore) throws -> HTTPSyncTransport {
        guard let enrolment = try replica.enrolment() else { throw StoreError(.invalid, "not enrolled") }
        return try HTTPSyncTransport(
            baseURL: enrolment.server, node: try replica.identity().node, token: enrolment.token, timeout: testTimeout)
    }

    /// How long a test's request may wait for its answer: the whole suite runs on two shared cores,
    /// where debug-build scrypt and hundreds of child processes can hold up an in-process server
    /// for over a minute. A server that never answers still fails the test.
    public static let testTimeout = TimeAmount.seconds(300)
}
