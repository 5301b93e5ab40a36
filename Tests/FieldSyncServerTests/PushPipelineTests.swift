import FieldSyncClient
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore
import FieldSyncTestSupport
import Foundation
import Synchronization
import Testing

@testable import FieldSyncServer

/// A push of many batches keeps two in flight (spec 8.3.1): the central node verifies batch k+1
/// while it commits batch k, and commits a sequence's batches in order whatever order they arrive in.
@Suite struct PushPipelineTests {
    let dir: TemporaryDirectory
    init() throws { dir = try TemporaryDirectory("push-pipeline") }

    /// A documenter with `count` incidents, enrolled with `server`, and a transport to it that
    /// holds back the first batch of each pipelined sequence by `delay`.
    func documenter(_ count: Int, _ server: LiveServer, delayingFirstBatchBy delay: Duration = .zero) async throws -> (
        ReplicaStore, RecordingTransport
    ) {
        let store = try ReplicaStore.create(at: dir.file("rima.sqlite"), name: "Rima", now: 1)
        try await server.enrol(store, as: "rima")
        for i in 0..<count { _ = try Fixtures.addIncident(store, title: "Incident \(i)") }
        return (store, RecordingTransport(inner: try Enrolling.transport(for: store), delay: delay))
    }

    @Test func aPushOfManyBatchesIsPipelinedAndStoresEverythingOnce() async throws {
        let server = try await LiveServer.start(storePath: dir.file("server.sqlite"))
        let (rima, transport) = try await documenter(95, server)
        let report = try await SyncDriver(store: rima, transport: transport, batchSize: 10, retries: 0).run()
        await transport.shutdown()
        #expect(report.pushed == 95)
        #expect(report.pushBatches == 10)
        #expect(transport.batches == Array(0..<10), "every batch was numbered in one sequence, and none sent twice")
        #expect(try server.store.status().revisions == 95)
        #expect(try Fixtures.canonicalState(server.store) == Fixtures.canonicalState(rima))
        let pushes = try await SQLiteSyncStorage(replica: server.store).audit(limit: 100).filter { $0.action == "push" }
        #expect(pushes.count == 10)
        #expect(pushes.allSatisfy { $0.detail.contains("duplicates 0") })
        await server.stop()
    }

    @Test func aBatchThatArrivesBeforeTheOneItFollowsWaitsForIt() async throws {
        let server = try await LiveServer.start(storePath: dir.file("server.sqlite"))
        // Batch 1 reaches the central node about 200 ms before batch 0.
        let (rima, transport) = try await documenter(20, server, delayingFirstBatchBy: .milliseconds(200))
        let report = try await SyncDriver(store: rima, transport: transport, batchSize: 10, retries: 0).run()
        await transport.shutdown()
        #expect(report.pushed == 20)
        #expect(transport.batches == [0, 1], "no batch was refused and sent again")
        #expect(transport.unsequenced == 0)
        #expect(try server.store.status().revisions == 20)
        await server.stop()
    }

    @Test func aBatchWhosePredecessorNeverReachedThisInstanceIsAGapAndThePushGoesOnOneAtATime() async throws {
        let server = try await LiveServer.start(storePath: dir.file("server.sqlite"))
        // Held back longer than the central node waits for a predecessor it has not seen begin.
        let (rima, transport) = try await documenter(30, server, delayingFirstBatchBy: .seconds(8))
        let report = try await SyncDriver(store: rima, transport: transport, batchSize: 10, retries: 0).run()
        await transport.shutdown()
        #expect(report.pushed == 30)
        #expect(transport.batches.prefix(2) == [0, 1])
        #expect(transport.unsequenced >= 1, "after the gap the rest went one batch at a time")
        #expect(try server.store.status().revisions == 30)
        #expect(try Fixtures.canonicalState(server.store) == Fixtures.canonicalState(rima))
        await server.stop()
    }

    @Test func theSequencerWaitsOnlyForAPredecessorItSawBegin() async throws {
        let sequencer = PushSequencer()
        let key = PushSequencer.Key(device: NodeID("aaaaaaaaaaaaaaaa")!, id: "00112233445566778899aabbccddeeff")
        // The first batch never waits; one whose predecessor is unknown waits only `unseen`.
        await sequencer.waitForTurn(key, batch: 0, unseen: .seconds(30))
        let unseenStart = ContinuousClock.now
        await sequencer.waitForTurn(key, batch: 3, unseen: .milliseconds(50), limit: .seconds(3600))
        #expect(unseenStart.duration(to: .now) < .seconds(600), "it did not wait for the hour-long limit")
        // A running predecessor holds it until it finishes.
        await sequencer.begin(key, batch: 0)
        let waiter = Task { () -> ContinuousClock.Instant in
            await sequencer.waitForTurn(key, batch: 1, unseen: .milliseconds(50), limit: .seconds(3600))
            return .now
        }
        try await Task.sleep(for: .milliseconds(300))
        let finished = ContinuousClock.now
        await sequencer.finish(key, batch: 0)
        let released = await waiter.value
        #expect(released >= finished, "batch 1 waited for batch 0 to finish")
        #expect(await sequencer.stage(key, batch: 0) == .finished)
    }

    @Test func aDeviceCannotMakeTheSequencerRememberOrWaitWithoutBound() async throws {
        let sequencer = PushSequencer(capacity: 100, perDevice: 2, waitersPerDevice: 1)
        let device = NodeID("aaaaaaaaaaaaaaaa")!
        let theirs = PushSequencer.Key(device: NodeID("bbbbbbbbbbbbbbbb")!, id: String(repeating: "f", count: 32))
        await sequencer.begin(theirs, batch: 0)
        // A third sequence of one device pushes out its own oldest, not another device's.
        let keys = (0..<3).map { PushSequencer.Key(device: device, id: String(repeating: "\($0)", count: 32)) }
        for key in keys { await sequencer.begin(key, batch: 0) }
        #expect(await sequencer.stage(keys[0], batch: 0) == nil)
        #expect(await sequencer.stage(keys[2], batch: 0) == .running)
        #expect(await sequencer.stage(theirs, batch: 0) == .running)
        // Batch numbers sent downwards are not all remembered.
        for batch in stride(from: 100, through: 0, by: -1) { await sequencer.begin(keys[2], batch: batch) }
        #expect(await sequencer.rememberedBatches(keys[2]) <= PushSequencer.window + 1)
        // One waiter per device here: a second goes ahead at once although its predecessor runs.
        await sequencer.begin(keys[1], batch: 5)
        let first = Task { await sequencer.waitForTurn(keys[1], batch: 6, unseen: .seconds(3600), limit: .seconds(3600)) }
        try await Task.sleep(for: .milliseconds(100))
        let start = ContinuousClock.now
        await sequencer.waitForTurn(keys[1], batch: 6, unseen: .seconds(3600), limit: .seconds(3600))
        #expect(start.duration(to: .now) < .seconds(600), "it did not wait for the hour-long limit")
        await sequencer.finish(keys[1], batch: 5)
        await first.value
    }

    @Test func theSequencerForgetsTheLeastRecentlyUsedSequenceBeyondItsCapacity() async throws {
        let sequencer = PushSequencer(capacity: 2)
        let device = NodeID("aaaaaaaaaaaaaaaa")!
        let keys = (0..<3).map { PushSequencer.Key(device: device, id: String(repeating: "\($0)", count: 32)) }
        for key in keys { await sequencer.begin(key, batch: 0) }
        #expect(await sequencer.stage(keys[0], batch: 0) == nil)
        #expect(await sequencer.stage(keys[2], batch: 0) == .running)
    }
}

/// Forwards pushes over HTTP, recording the batch number of each pipelined one (and counting the
/// others), and holding back batch 0 of a sequence by `delay`.
final class RecordingTransport: ForwardingTransport, Sendable {
    let http: HTTPSyncTransport
    var inner: any SyncTransport { http }
    let delay: Duration
    private let record = Mutex((batches: [Int](), unsequenced: 0))

    init(inner: HTTPSyncTransport, delay: Duration) {
        self.http = inner
        self.delay = delay
    }

    var batches: [Int] { record.withLock { $0.batches.sorted() } }
    var unsequenced: Int { record.withLock { $0.unsequenced } }
    var pipelinesPushes: Bool { true }

    func shutdown() async { await http.shutdown() }

    func push(node: NodeID, revisionTexts: [String]) async throws -> PushResponse {
        record.withLock { $0.unsequenced += 1 }
        return try await http.push(node: node, revisionTexts: revisionTexts)
    }
    func push(node: NodeID, revisionTexts: [String], sequence: PushSequence) async throws -> PushResponse {
        record.withLock { $0.batches.append(sequence.batch) }
        if sequence.batch == 0, delay > .zero { try await Task.sleep(for: delay) }
        return try await http.push(node: node, revisionTexts: revisionTexts, sequence: sequence)
    }
}
