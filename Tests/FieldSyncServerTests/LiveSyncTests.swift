import FieldSyncClient
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncServer
import FieldSyncStore
import FieldSyncTestSupport
import Foundation
import Testing

/// Replicas syncing with a real server on 127.0.0.1 over HTTP.
@Suite struct LiveSyncTests {
    let dir: TemporaryDirectory
    init() throws { dir = try TemporaryDirectory("live") }

    /// A replica enrolled with `server` as a documenter.
    func replica(_ name: String, _ server: LiveServer, role: Role = .documenter) async throws -> ReplicaStore {
        let store = try ReplicaStore.create(at: dir.file("\(name).sqlite"), name: name, now: 1)
        try await server.enrol(store, as: name, role: role)
        return store
    }

    func sync(_ store: ReplicaStore, _ server: LiveServer, batchSize: Int = 500) async throws -> SyncReport {
        var enrolment = try #require(try store.enrolment())
        if enrolment.server != server.url {
            // The server restarted on a new port.
            enrolment.server = server.url
            try store.saveEnrolment(enrolment, now: 2)
        }
        let transport = try Enrolling.transport(for: store)
        defer { Task { await transport.shutdown() } }
        return try await SyncDriver(store: store, transport: transport, batchSize: batchSize, retries: 0).run()
    }

    @Test func threeReplicasConvergeByteForByteIncludingConflicts() async throws {
        let server = try await LiveServer.start(storePath: dir.file("server.sqlite"))
        let rima = try await replica("Rima", server)
        let omar = try await replica("Omar", server)
        let lina = try await replica("Lina", server)
        let id = try Fixtures.addIncident(rima, title: "Raid on the village of Al-Rusafa", [.set(path: "casualties.killed", value: 9)])
        _ = try await sync(rima, server)
        _ = try await sync(omar, server)
        _ = try await sync(lina, server)
        // Offline, concurrently: different fields merge, the same field with different values conflicts.
        try Fixtures.edit(rima, id, [.set(path: "casualties.killed", value: 11), .add(path: "tags", element: "hospital-list")])
        try Fixtures.edit(
            omar, id,
            [.set(path: "casualties.killed", value: 14), .set(path: "narrative", value: "Witnesses describe house-to-house searches.")])
        try Fixtures.edit(lina, id, [.set(path: "location.governorate", value: "Latakia"), .add(path: "tags", element: "video")])
        try Fixtures.addIncident(lina, title: "Looting of shops in the market")
        let schedule: [ReplicaStore] = [lina, omar, rima, lina, omar]
        var conflicts = 0
        for store in schedule { conflicts += try await sync(store, server).newConflicts }
        let states = try [rima, omar, lina, server.store].map(Fixtures.canonicalState)
        #expect(Set(states).count == 1)
        let merged = try rima.record(id)!
        #expect(merged.conflicts.map(\.path) == ["casualties.killed"])
        #expect(merged.conflicts[0].candidates.compactMap(\.value).sorted { $0.intValue! < $1.intValue! } == [11, 14])
        #expect(merged.value(at: "narrative") == "Witnesses describe house-to-house searches.")
        #expect(merged.value(at: "location.governorate") == "Latakia")
        #expect(merged.elements(of: "tags") == ["hospital-list", "video"])
        #expect(conflicts >= 1)
        #expect(try rima.records().count == 2)
        await server.stop()
    }

    @Test func aSecondSyncSendsNothingAndRePushIsHarmless() async throws {
        let server = try await LiveServer.start(storePath: dir.file("server.sqlite"))
        let rima = try await replica("Rima", server)
        for i in 0..<30 { try Fixtures.addIncident(rima, title: "Incident \(i)") }
        let first = try await sync(rima, server, batchSize: 7)
        #expect(first.pushed == 30)
        #expect(first.pushBatches == 5)
        let second = try await sync(rima, server)
        #expect(second.pushed == 0)
        #expect(second.pulled == 0)
        // Pushing the same batch again stores nothing twice.
        let transport = try Enrolling.transport(for: rima)
        let texts = try rima.missing(from: VersionVector(), limit: 30).texts
        let again = try await transport.push(node: try rima.identity().node, revisionTexts: texts)
        await transport.shutdown()
        #expect(again.accepted == 0)
        #expect(again.duplicates == 30)
        #expect(try server.store.status().revisions == 30)
        await server.stop()
    }

    @Test func aServerRestoredFromAnOldBackupGetsEverythingAgain() async throws {
        let serverPath = dir.file("server.sqlite")
        var server = try await LiveServer.start(storePath: serverPath)
        let rima = try await replica("Rima", server)
        try Fixtures.addIncident(rima, title: "First")
        _ = try await sync(rima, server)
        await server.stop()
        // A file-level backup takes the database and its write-ahead log together.
        for suffix in ["", "-wal"] where FileManager.default.fileExists(atPath: serverPath + suffix) {
            try FileManager.default.copyItem(atPath: serverPath + suffix, toPath: dir.file("backup.sqlite") + suffix)
        }
        server = try await LiveServer.start(storePath: serverPath)
        try Fixtures.addIncident(rima, title: "Second")
        _ = try await sync(rima, server)
        await server.stop()
        // The central node's disk dies; the admin restores last night's backup.
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: serverPath + suffix) }
        for suffix in ["", "-wal"] where FileManager.default.fileExists(atPath: dir.file("backup.sqlite") + suffix) {
            try FileManager.default.copyItem(atPath: dir.file("backup.sqlite") + suffix, toPath: serverPath + suffix)
        }
        server = try await LiveServer.start(storePath: serverPath)
        try Fixtures.addIncident(rima, title: "Third")
        let report = try await sync(rima, server)
        #expect(report.pushed == 2)
        #expect(try Fixtures.canonicalState(server.store) == Fixtures.canonicalState(rima))
        await server.stop()
    }

    @Test func anInterruptedPullResumesAfterTheServerRestarts() async throws {
        let serverPath = dir.file("server.sqlite")
        var server = try await LiveServer.start(storePath: serverPath)
        let rima = try await replica("Rima", server)
        for i in 0..<60 { try Fixtures.addIncident(rima, title: "Incident \(i)") }
        _ = try await sync(rima, server)
        let omar = try await replica("Omar", server)
        // Stop the server after the second pulled batch has been committed.
        let http = try Enrolling.transport(for: omar)
        let stopping = StopAfterPulls(inner: http, pulls: 2, server: server)
        await #expect(throws: SyncError.self) {
            _ = try await SyncDriver(store: omar, transport: stopping, batchSize: 10, retries: 0).run()
        }
        await http.shutdown()
        let partial = try omar.status().revisions
        #expect(partial == 20)
        server = try await LiveServer.start(storePath: serverPath)
        let report = try await sync(omar, server, batchSize: 10)
        #expect(report.pulled == 40)
        #expect(try Fixtures.canonicalState(omar) == Fixtures.canonicalState(rima))
        #expect(try omar.integrityCheck() == "ok")
        await server.stop()
    }

    @Test func aReplicaRestoredFromABackupTakesANewNodeID() async throws {
        let server = try await LiveServer.start(storePath: dir.file("server.sqlite"))
        let path = dir.file("laptop.sqlite")
        let laptop = try ReplicaStore.create(at: path, name: "Rima", now: 1)
        try await server.enrol(laptop, as: "rima")
        try Fixtures.addIncident(laptop, title: "Before the backup")
        _ = try await sync(laptop, server)
        try FileManager.default.copyItem(atPath: path, toPath: dir.file("backup.sqlite"))
        let id = try Fixtures.addIncident(laptop, title: "After the backup")
        _ = try await sync(laptop, server)
        let oldNode = try laptop.identity().node
        // The laptop is lost; the documenter restores yesterday's backup.
        let restored = try ReplicaStore.open(at: dir.file("backup.sqlite"))
        let report = try await sync(restored, server)
        #expect(report.retiredNode == oldNode)
        #expect(report.newNode != nil)
        #expect(try restored.identity().node != oldNode)
        #expect(report.pulled == 1)
        #expect(try restored.record(id)?.value(at: "title") == "After the backup")
        // New work is written under the new node id and never reuses a dot.
        try Fixtures.edit(restored, id, [.set(path: "casualties.killed", value: 2)])
        let after = try await sync(restored, server)
        #expect(after.pushed == 1)
        #expect(try Fixtures.canonicalState(server.store) == Fixtures.canonicalState(restored))
        await server.stop()
    }

    @Test func anUnreachableServerIsAClearError() async throws {
        let rima = try ReplicaStore.create(at: dir.file("Rima.sqlite"), name: "Rima", now: 1)
        let transport = try HTTPSyncTransport(baseURL: "http://127.0.0.1:1")
        do {
            _ = try await SyncDriver(store: rima, transport: transport, retries: 1, initialBackoffSeconds: 0.01).run()
            Issue.record("sync should have failed")
        } catch let error as SyncError {
            #expect(error.isTransient)
            #expect(error.description.contains("127.0.0.1:1"))
        }
        await transport.shutdown()
    }
}

/// Forwards to a transport and stops the live server once `pulls` pull responses were delivered.
final class StopAfterPulls: ForwardingTransport, @unchecked Sendable {
    // Mutated only from the sync driver's sequential calls.
    let inner: any SyncTransport
    let server: LiveServer
    let pulls: Int
    var count = 0

    init(inner: any SyncTransport, pulls: Int, server: LiveServer) {
        self.inner = inner
        self.pulls = pulls
        self.server = server
    }

    func pull(_ request: PullRequest) async throws -> PullResponse {
        let response = try await inner.pull(request)
        count += 1
        if count == pulls { await server.stop() }
        return response
    }
}
