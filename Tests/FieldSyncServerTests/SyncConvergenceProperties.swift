import FieldSyncClient
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore
import FieldSyncTestSupport
import PropertyBased
import Testing

/// Property: whatever the edits and whatever the order replicas sync in, all converge once each
/// has synced after the last edit.
@Suite struct SyncConvergenceProperties {
    enum Step: Sendable, CustomStringConvertible {
        case edit(replica: Int, record: Int, field: Int, value: Int)
        case sync(replica: Int)
        var description: String {
            switch self {
            case .edit(let r, let rec, let f, let v): "edit(r\(r), rec\(rec), f\(f), \(v))"
            case .sync(let r): "sync(r\(r))"
            }
        }
    }

    /// One integer decoded into a step, so that shrinking works on plain numbers.
    static let stepGen = Gen.int(in: 0...959).map { n -> Step in
        let kind = n % 10
        let replica = (n / 10) % 3
        let record = (n / 30) % 2
        let field = (n / 60) % 4
        let value = (n / 240) % 4
        return kind < 3 ? .sync(replica: replica) : .edit(replica: replica, record: record, field: field, value: value)
    }

    @Test func randomEditsAndSyncSchedulesConvergeThroughTheServer() async throws {
        await propertyCheck(count: 40, input: Self.stepGen.array(of: 1...25)) { steps in
            do {
                let dir = try TemporaryDirectory("prop")
                defer { dir.remove() }
                let server = try ReplicaStore.create(at: dir.file("server.sqlite"), name: "central", now: 1, access: .pool)
                let replicas = try (0..<3).map { try ReplicaStore.create(at: dir.file("r\($0).sqlite"), name: "R\($0)", now: 1) }
                let directory = KeyDirectory(try replicas.map { KeyEntry(node: try $0.identity().node, publicKey: try $0.publicKey()) })
                let transport = StorageTransport(storage: SQLiteSyncStorage(replica: server), directory: directory)
                // Two shared records, created on replica 0 and synced everywhere first.
                var ids: [RecordID] = []
                for i in 0..<2 { ids.append(try Fixtures.addIncident(replicas[0], title: "Incident \(i)")) }
                for r in replicas { _ = try await SyncDriver(store: r, transport: transport, batchSize: 3, retries: 0).run() }
                for step in steps {
                    switch step {
                    case .edit(let r, let rec, let field, let value):
                        let change: FieldChange =
                            switch field {
                            case 0: .set(path: "casualties.killed", value: .int(Int64(value)))
                            case 1: .set(path: "narrative", value: .string("account \(value)"))
                            case 2: .add(path: "tags", element: "tag\(value)")
                            default: .set(path: "status", value: .string(["draft", "submitted", "verified", "rejected"][value]))
                            }
                        try Fixtures.edit(replicas[r], ids[rec], [change])
                    case .sync(let r):
                        _ = try await SyncDriver(store: replicas[r], transport: transport, batchSize: 3, retries: 0).run()
                    }
                }
                // Everyone syncs twice at the end: the first round pushes, the second pulls the rest.
                for _ in 0..<2 {
                    for r in replicas { _ = try await SyncDriver(store: r, transport: transport, batchSize: 3, retries: 0).run() }
                }
                let states = try (replicas + [server]).map(Fixtures.canonicalState)
                #expect(Set(states).count == 1, "replicas diverged after \(steps)")
                let counts = try (replicas + [server]).map { try $0.status().revisions }
                #expect(Set(counts).count == 1)
            } catch {
                Issue.record("unexpected error: \(error)")
            }
        }
    }
}
