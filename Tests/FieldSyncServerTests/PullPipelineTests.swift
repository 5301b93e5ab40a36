import FieldSyncClient
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore
import FieldSyncTestSupport
import Synchronization
import Testing

/// The pull's pipeline (page k+1 fetched and its signatures verified while page k is written) keeps
/// every guarantee of one page at a time: each page is one transaction, a forged revision in the
/// page fetched ahead is refused without storing it while the page before stays committed, a
/// signature checked ahead counts only with the key the replica holds, and the prefetch ends with
/// the sync.
@Suite struct PullPipelineTests {
    let dir: TemporaryDirectory

    init() throws { dir = try TemporaryDirectory("pipeline") }

    /// A central node holding `count` incidents written by one replica, and a fresh replica to pull them.
    func archive(_ count: Int) async throws -> (
        central: ReplicaStore, writer: ReplicaStore, reader: ReplicaStore, transport: StorageTransport<SQLiteSyncStorage>
    ) {
        let central = try ReplicaStore.create(at: dir.file("central.sqlite"), name: "central", now: 1, access: .pool)
        let writer = try ReplicaStore.create(at: dir.file("writer.sqlite"), name: "Writer", now: 1)
        let reader = try ReplicaStore.create(at: dir.file("reader.sqlite"), name: "Reader", now: 1)
        for i in 0..<count { _ = try Fixtures.addIncident(writer, title: "Incident \(i)") }
        let directory = KeyDirectory([
            KeyEntry(node: try writer.identity().node, publicKey: try writer.publicKey()),
            KeyEntry(node: try reader.identity().node, publicKey: try reader.publicKey()),
        ])
        let transport = StorageTransport(storage: SQLiteSyncStorage(replica: central), directory: directory)
        _ = try await SyncDriver(store: writer, transport: transport, batchSize: 100, retries: 0).run()
        #expect(try central.status().revisions == count)
        return (central, writer, reader, transport)
    }

    @Test func aForgedRevisionInThePageFetchedAheadIsRefusedWhileThePageBeforeStaysCommitted() async throws {
        let (_, writer, reader, transport) = try await archive(10)
        let writerNode = try writer.identity().node
        // A hostile relay alters one revision of the second page and keeps its signature.
        let altering = AlteringTransport(inner: transport) { page, response in
            guard page == 2 else { return response }
            var response = response
            response.revisions[1].operations = [.set(path: "title", value: "Nothing happened here")]
            return response
        }
        await #expect(throws: SyncError.self) {
            _ = try await SyncDriver(store: reader, transport: altering, batchSize: 4, retries: 0).run()
        }
        // Page 1 was written before page 2 was judged; nothing of page 2 was.
        #expect(try reader.knowledge()[writerNode] == 4)
        #expect(try reader.status().revisions == 4)
        #expect(try reader.records().allSatisfy { $0.value(at: "title") != "Nothing happened here" })
        #expect(altering.pulls >= 2)
        // The honest central node's pages complete it.
        let report = try await SyncDriver(store: reader, transport: transport, batchSize: 4, retries: 0).run()
        #expect(report.pulled == 6)
        #expect(try Fixtures.canonicalState(reader) == Fixtures.canonicalState(writer))
    }

    @Test func aRevisionOfAnUnknownNodeInAPageFetchedAheadIsRefusedWithThePagesBeforeCommitted() async throws {
        let (_, writer, reader, transport) = try await archive(9)
        // The third page carries a revision that names a node the replica has no key for.
        let stranger = try ReplicaStore.create(at: dir.file("stranger.sqlite"), name: "Stranger", now: 1)
        _ = try Fixtures.addIncident(stranger, title: "From nowhere")
        let unknown = try stranger.allRevisions()[0]
        let altering = AlteringTransport(inner: transport) { page, response in
            guard page == 3 else { return response }
            var response = response
            response.revisions.append(unknown)
            return response
        }
        await #expect(throws: SyncError.self) {
            _ = try await SyncDriver(store: reader, transport: altering, batchSize: 3, retries: 0).run()
        }
        #expect(try reader.knowledge()[writer.identity().node] == 6)
        #expect(try reader.knowledge()[stranger.identity().node] == 0)
    }

    /// A modified client's trick: a signature verified ahead with a key of its choosing (here a
    /// documenter's own device key) must not stand in for the check with the key the replica holds.
    @Test func aSignatureCheckedAheadWithAnotherKeyIsNotTaken() throws {
        let writer = try ReplicaStore.create(at: dir.file("w.sqlite"), name: "Writer", now: 1)
        let reader = try ReplicaStore.create(at: dir.file("r.sqlite"), name: "Reader", now: 1)
        let id = try Fixtures.addIncident(writer, title: "Raid at the market")
        try Fixtures.edit(writer, id, [.set(path: "casualties.killed", value: 3)])
        let genuine = try writer.allRevisions()
        let writerKey = KeyEntry(node: try writer.identity().node, publicKey: try writer.publicKey())
        _ = try reader.receiveVerified([genuine[0]], learning: [writerKey], now: 2)

        let documenter = DeviceKey.generate()
        var altered = genuine[1]
        altered.operations = [.set(path: "casualties.killed", value: 0)]
        let forged = try documenter.sign(altered)
        let ahead = KeyDirectory([KeyEntry(node: writerKey.node, publicKey: documenter.publicKeyBase64)])
            .checkSignatures([forged], skipping: VersionVector())
        #expect(ahead.count == 1, "the forged revision verifies with the documenter's key")
        #expect(throws: ProtocolError.self) { _ = try reader.receiveVerified([forged], prechecked: ahead, now: 3) }
        #expect(try reader.knowledge()[writerKey.node] == 1)
        #expect(try reader.record(id)?.value(at: "casualties.killed") == nil)

        // The genuine revision, checked ahead with the writer's key, is taken.
        let honest = KeyDirectory([writerKey]).checkSignatures([genuine[1]], skipping: VersionVector())
        _ = try reader.receiveVerified([genuine[1]], prechecked: honest, now: 4)
        #expect(try reader.record(id)?.value(at: "casualties.killed") == 3)
    }

    /// Pull 2 is the page fetched ahead while page 1 is written; pull 3 is requested as soon as
    /// page 2 arrives, before its check. Whichever request never answers, cancelling the sync
    /// cancels it, and every page stored is whole: page 1, and perhaps page 2.
    @Test(arguments: [2, 3])
    func aRequestAheadIsCancelledWithTheSync(blocking: Int) async throws {
        let (_, writer, reader, transport) = try await archive(8)
        let blocked = BlockingPull(inner: transport, blocking: blocking)
        let sync = Task { try await SyncDriver(store: reader, transport: blocked, batchSize: 2, retries: 0).run() }
        let deadline = ContinuousClock.now + .seconds(240)
        while !blocked.started, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(blocked.started)
        sync.cancel()
        let result = await sync.result
        #expect(throws: (any Error).self) { try result.get() }
        #expect(blocked.cancelled, "the request ahead was cancelled with the sync")
        let stored = try reader.status().revisions
        #expect(stored % 2 == 0 && stored >= 2 && stored <= 2 * (blocking - 1), "\(stored) revisions stored")
        #expect(try reader.knowledge()[writer.identity().node] == UInt64(stored))
    }

    /// The pipeline is bounded: no request asks for more than two pages past what is stored, so
    /// at most three pages are in hand (written, checked, arriving), however slow the writes.
    @Test func noRequestRunsMoreThanTwoPagesAheadOfTheWrites() async throws {
        let (_, writer, reader, transport) = try await archive(30)
        let recording = LeadRecordingTransport(inner: transport, reader: reader, node: try writer.identity().node)
        let report = try await SyncDriver(store: reader, transport: recording, batchSize: 3, retries: 0).run()
        #expect(report.pulled == 30)
        #expect(try Fixtures.canonicalState(reader) == Fixtures.canonicalState(writer))
        let leads = recording.recorded
        #expect(leads.count >= 10)
        #expect(leads.allSatisfy { $0 >= 0 && $0 <= 2 * 3 }, "leads: \(leads)")
    }
}

/// Forwards to a transport, except that the pull numbered `blocking` waits until it is cancelled.
final class BlockingPull: ForwardingTransport, Sendable {
    let inner: any SyncTransport
    let blocking: Int
    private let state = Mutex((pulls: 0, started: false, cancelled: false))

    init(inner: any SyncTransport, blocking: Int) {
        self.inner = inner
        self.blocking = blocking
    }

    var started: Bool { state.withLock { $0.started } }
    var cancelled: Bool { state.withLock { $0.cancelled } }

    func pull(_ request: PullRequest) async throws -> PullResponse {
        let number = state.withLock { state in
            state.pulls += 1
            if state.pulls == blocking { state.started = true }
            return state.pulls
        }
        if number == blocking {
            do {
                try await Task.sleep(for: .seconds(120))
            } catch {
                state.withLock { $0.cancelled = true }
                throw error
            }
        }
        return try await inner.pull(request)
    }
}

/// Forwards to a transport and notes, at each pull request, how many revisions of `node` it asks
/// past what `reader` has stored by then: how far the pipeline runs ahead of the writes.
final class LeadRecordingTransport: ForwardingTransport, Sendable {
    let inner: any SyncTransport
    let reader: ReplicaStore
    let node: NodeID
    private let leads = Mutex<[Int]>([])

    init(inner: any SyncTransport, reader: ReplicaStore, node: NodeID) {
        self.inner = inner
        self.reader = reader
        self.node = node
    }

    var recorded: [Int] { leads.withLock { $0 } }

    func pull(_ request: PullRequest) async throws -> PullResponse {
        let stored = try reader.knowledge()[node]
        leads.withLock { $0.append(Int(request.knowledge[node]) - Int(stored)) }
        return try await inner.pull(request)
    }
}

/// Forwards to a transport, passing each pull response through `alter` with its number (from 1).
final class AlteringTransport: ForwardingTransport, Sendable {
    let inner: any SyncTransport
    let alter: @Sendable (Int, PullResponse) -> PullResponse
    private let count = Mutex(0)

    init(inner: any SyncTransport, alter: @escaping @Sendable (Int, PullResponse) -> PullResponse) {
        self.inner = inner
        self.alter = alter
    }

    var pulls: Int { count.withLock { $0 } }

    func pull(_ request: PullRequest) async throws -> PullResponse {
        let response = try await inner.pull(request)
        let page = count.withLock { count in
            count += 1
            return count
        }
        return alter(page, response)
    }
}
