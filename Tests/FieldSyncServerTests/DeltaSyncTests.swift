import FieldSyncClient
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore
import FieldSyncTestSupport
import Foundation
import Synchronization
import Testing

/// A sync with only the replica's own new work pushes it without asking the central node first,
/// from what it held at the last sync, and takes the full way when the central node holds otherwise.
@Suite struct DeltaSyncTests {
    let dir: TemporaryDirectory

    init() throws { dir = try TemporaryDirectory("delta") }

    func central(_ name: String = "central", keys: [ReplicaStore] = []) throws -> (
        store: ReplicaStore, transport: StorageTransport<SQLiteSyncStorage>
    ) {
        let store = try ReplicaStore.create(at: dir.file("\(name).sqlite"), name: name, now: 1, access: .pool)
        let directory = KeyDirectory(try keys.map { KeyEntry(node: try $0.identity().node, publicKey: try $0.publicKey()) })
        return (store, StorageTransport(storage: SQLiteSyncStorage(replica: store), directory: directory))
    }

    @Test func aDeltaIsOnePushWithoutAskingFirst() async throws {
        let (server, transport) = try central()
        let rima = try ReplicaStore.create(at: dir.file("rima.sqlite"), name: "Rima", now: 1)
        for i in 0..<3 { _ = try Fixtures.addIncident(rima, title: "Incident \(i)") }
        _ = try await SyncDriver(store: rima, transport: transport, retries: 0).run()
        _ = try Fixtures.addIncident(rima, title: "Detention at the checkpoint")
        let counting = CountingTransport(inner: transport)
        let report = try await SyncDriver(store: rima, transport: counting, retries: 0).run()
        #expect(report.pushed == 1)
        #expect(counting.counts == .init(knowledge: 0, push: 1, pull: 0, keys: 0))
        #expect(try server.status().revisions == 4)
        #expect(try rima.centralKnowledge() == rima.knowledge())
        // A sync with nothing new still asks (one request), and sends nothing.
        let idle = CountingTransport(inner: transport)
        _ = try await SyncDriver(store: rima, transport: idle, retries: 0).run()
        #expect(idle.counts == .init(knowledge: 1, push: 0, pull: 0, keys: 0))
    }

    @Test func workThatCameByBundleTakesTheFullWay() async throws {
        let rima = try ReplicaStore.create(at: dir.file("rima.sqlite"), name: "Rima", now: 1)
        let omar = try ReplicaStore.create(at: dir.file("omar.sqlite"), name: "Omar", now: 1)
        let (_, transport) = try central(keys: [rima, omar])
        _ = try Fixtures.addIncident(rima, title: "Shelling of the school")
        _ = try await SyncDriver(store: rima, transport: transport, retries: 0).run()
        // Omar's revision reaches Rima by USB stick, then Rima writes on.
        _ = try Fixtures.addIncident(omar, title: "Looting of the pharmacy")
        _ = try rima.receiveVerified(
            try omar.allRevisions(), learning: [KeyEntry(node: try omar.identity().node, publicKey: try omar.publicKey())],
            unconfirmed: true, now: 2)
        _ = try Fixtures.addIncident(rima, title: "Detentions at the bakery")
        let counting = CountingTransport(inner: transport)
        let report = try await SyncDriver(store: rima, transport: counting, retries: 0).run()
        #expect(counting.counts.knowledge >= 1, "relayed work is checked against the central node's history first")
        #expect(report.pushed == 2)
    }

    @Test func aCentralNodeRestoredFromAnOlderCopyAnswersAGapAndTheSyncAsksFirst() async throws {
        let (_, transport) = try central()
        let rima = try ReplicaStore.create(at: dir.file("rima.sqlite"), name: "Rima", now: 1)
        for i in 0..<3 { _ = try Fixtures.addIncident(rima, title: "Incident \(i)") }
        _ = try await SyncDriver(store: rima, transport: transport, retries: 0).run()
        // The central node is lost and restored from a copy that held only the first revision.
        let (restored, restoredTransport) = try central("restored")
        _ = try restored.receive([try rima.allRevisions()[0]], now: 2)
        _ = try Fixtures.addIncident(rima, title: "Incident 3")
        let counting = CountingTransport(inner: restoredTransport)
        let report = try await SyncDriver(store: rima, transport: counting, retries: 0).run()
        #expect(counting.counts.push >= 2, "the push from remembered knowledge was refused, then the full way pushed")
        #expect(counting.counts.knowledge >= 1)
        #expect(report.pushed == 3)
        #expect(try restored.status().revisions == 4)
        #expect(try Fixtures.canonicalState(restored) == Fixtures.canonicalState(rima))
    }

    @Test func aCentralNodeThatLostAColleaguesWorkGetsItAgainAfterADelta() async throws {
        let rima = try ReplicaStore.create(at: dir.file("rima.sqlite"), name: "Rima", now: 1)
        let omar = try ReplicaStore.create(at: dir.file("omar.sqlite"), name: "Omar", now: 1)
        let (_, transport) = try central(keys: [rima, omar])
        _ = try Fixtures.addIncident(rima, title: "Shelling of the school")
        _ = try await SyncDriver(store: rima, transport: transport, retries: 0).run()
        _ = try Fixtures.addIncident(omar, title: "Looting of the pharmacy")
        _ = try await SyncDriver(store: omar, transport: transport, retries: 0).run()
        _ = try await SyncDriver(store: rima, transport: transport, retries: 0).run()
        let omarNode = try omar.identity().node
        #expect(try rima.centralKnowledge()?[omarNode] == 1)
        // Restored from a copy that holds Rima's revision but lost Omar's.
        let (restored, restoredTransport) = try central("restored", keys: [rima, omar])
        let rimaNode = try rima.identity().node
        _ = try restored.receive(try rima.allRevisions().filter { $0.dot.node == rimaNode }, now: 2)
        _ = try Fixtures.addIncident(rima, title: "Detentions at the bakery")
        let report = try await SyncDriver(store: rima, transport: restoredTransport, retries: 0).run()
        #expect(report.pushed == 2, "Rima's new revision, then Omar's that the central node lost")
        #expect(try restored.knowledge()[omarNode] == 1)
        #expect(try restored.status().revisions == 3)
        #expect(try rima.centralKnowledge() == restored.knowledge())
    }

    @Test func aClonePushingRememberedCountersIsRefusedAndReMints() async throws {
        let (server, transport) = try central()
        let rima = try ReplicaStore.create(at: dir.file("rima.sqlite"), name: "Rima", now: 1)
        _ = try Fixtures.addIncident(rima, title: "Shelling of the school")
        _ = try await SyncDriver(store: rima, transport: transport, retries: 0).run()
        // A copy of the laptop's disk, not a backup made by `fieldsync backup` (which re-keys).
        for suffix in ["", "-wal"] where FileManager.default.fileExists(atPath: dir.file("rima.sqlite") + suffix) {
            try FileManager.default.copyItem(atPath: dir.file("rima.sqlite") + suffix, toPath: dir.file("clone.sqlite") + suffix)
        }
        let clone = try ReplicaStore.open(at: dir.file("clone.sqlite"))
        #expect(try clone.identity().node == rima.identity().node)
        // Both copies write under the same next counter; the original syncs first.
        _ = try Fixtures.addIncident(rima, title: "Written on the laptop")
        _ = try await SyncDriver(store: rima, transport: transport, retries: 0).run()
        _ = try Fixtures.addIncident(clone, title: "Written on the clone")
        let report = try await SyncDriver(store: clone, transport: transport, retries: 0).run()
        #expect(report.newNode != nil, "the clone took a new node id")
        #expect(report.reminted == 1)
        let titles = Set(try server.records().compactMap { $0.value(at: "title")?.stringValue })
        #expect(titles == ["Shelling of the school", "Written on the laptop", "Written on the clone"])
    }
}

/// Forwards to a transport and counts its requests by kind.
final class CountingTransport: ForwardingTransport, Sendable {
    struct Counts: Equatable, Sendable {
        var knowledge = 0
        var push = 0
        var pull = 0
        var keys = 0
    }

    let inner: any SyncTransport
    private let tally = Mutex(Counts())

    init(inner: any SyncTransport) { self.inner = inner }

    var counts: Counts { tally.withLock { $0 } }
    /// One batch at a time, so that every push is counted here.
    var pipelinesPushes: Bool { false }

    func knowledge(probing dot: Dot?) async throws -> KnowledgeResponse {
        tally.withLock { $0.knowledge += 1 }
        return try await inner.knowledge(probing: dot)
    }
    func push(node: NodeID, revisionTexts: [String]) async throws -> PushResponse {
        tally.withLock { $0.push += 1 }
        return try await inner.push(node: node, revisionTexts: revisionTexts)
    }
    func keys(unlessTagged known: String?) async throws -> (directory: KeyDirectory, tag: String?)? {
        tally.withLock { $0.keys += 1 }
        return try await inner.keys(unlessTagged: known)
    }
    func pull(_ request: PullRequest) async throws -> PullResponse {
        tally.withLock { $0.pull += 1 }
        return try await inner.pull(request)
    }
}
