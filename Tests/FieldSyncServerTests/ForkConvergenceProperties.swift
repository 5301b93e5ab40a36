import FieldSyncClient
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore
import FieldSyncTestSupport
import Foundation
import PropertyBased
import Testing

/// Property (issue 12): random edits on three replicas, random syncs, bundle exchanges, and restores
/// of random replicas from random earlier plain file copies. After a final round of syncs every
/// replica and the central node are identical, and every value that ever reached the central node
/// is in history everywhere. (A value whose every holder was restored to an older copy before it
/// reached the central node is lost with those laptops, as it would be.)
@Suite struct ForkConvergenceProperties {
    enum Step: Sendable, CustomStringConvertible {
        case edit(replica: Int, record: Int, field: Int)
        case sync(replica: Int)
        case bundle(from: Int, to: Int)
        case copy(replica: Int)
        case restore(replica: Int, copy: Int)
        var description: String {
            switch self {
            case .edit(let r, let rec, let f): "edit(r\(r), rec\(rec), f\(f))"
            case .sync(let r): "sync(r\(r))"
            case .bundle(let a, let b): "bundle(r\(a)→r\(b))"
            case .copy(let r): "copy(r\(r))"
            case .restore(let r, let c): "restore(r\(r), copy \(c))"
            }
        }
    }

    static let stepGen = Gen.int(in: 0...1799).map { n -> Step in
        let kind = n % 10
        let replica = (n / 10) % 3
        let other = (n / 30) % 3
        let record = (n / 90) % 2
        let field = (n / 180) % 3
        switch kind {
        case 0, 1, 2: return .sync(replica: replica)
        case 3, 4, 5: return .edit(replica: replica, record: record, field: field)
        case 6: return .bundle(from: replica, to: other == replica ? (replica + 1) % 3 : other)
        case 7, 8: return .copy(replica: replica)
        default: return .restore(replica: replica, copy: (n / 10) % 7)
        }
    }

    /// A case the property found: a restored copy's revision reaches a colleague by bundle under a
    /// dot the central node already holds otherwise, and the colleague has nothing newer of that
    /// node, so neither its pushes nor its pulls would ever show the difference.
    @Test func aBundledForkAtTheServersOwnCounterIsFoundAndReplaced() async throws {
        try await Self.run([
            .copy(replica: 1), .edit(replica: 1, record: 1, field: 0), .sync(replica: 1), .restore(replica: 1, copy: 0),
            .edit(replica: 1, record: 1, field: 1), .bundle(from: 1, to: 2),
        ])
    }

    @Test func restoresClonesAndBundlesConvergeWithoutLosingAWrite() async throws {
        await propertyCheck(count: 30, input: Self.stepGen.array(of: 1...30)) { steps in
            do {
                try await Self.run(steps)
            } catch {
                Issue.record("unexpected error after \(steps): \(error)")
            }
        }
    }

    static func run(_ steps: [Step]) async throws {
        let dir = try TemporaryDirectory("forkprop")
        defer { dir.remove() }
        let server = try ReplicaStore.create(at: dir.file("server.sqlite"), name: "central", now: 1, access: .pool)
        let storage = SQLiteSyncStorage(replica: server)
        var replicas = try (0..<3).map { try ReplicaStore.create(at: dir.file("r\($0).sqlite"), name: "R\($0)", now: 1) }
        let keys = try replicas.map { try $0.publicKey() }
        let registry = KeyRegistry(try replicas.map { KeyEntry(node: try $0.identity().node, publicKey: try $0.publicKey()) })
        func sync(_ r: Int) async throws {
            let transport = StorageTransport(storage: storage, registry: registry, devicePublicKey: keys[r])
            _ = try await SyncDriver(store: replicas[r], transport: transport, batchSize: 3, retries: 0).run()
        }
        var ids: [RecordID] = []
        for i in 0..<2 { ids.append(try Fixtures.addIncident(replicas[0], title: "Incident \(i)")) }
        for r in 0..<3 { try await sync(r) }
        var copies: [(replica: Int, path: String)] = []
        var written: [String] = []
        var reachedServer = Set<String>()
        var now: Int64 = 1_741_340_200_000
        for step in steps {
            now += 1000
            switch step {
            case .edit(let r, let rec, let field):
                let value = "v\(written.count)"
                written.append(value)
                let change: FieldChange =
                    switch field {
                    case 0: .set(path: "narrative", value: .string(value))
                    case 1: .set(path: "location.place", value: .string(value))
                    default: .add(path: "tags", element: value)
                    }
                try Fixtures.edit(replicas[r], ids[rec], [change], now: now)
            case .sync(let r):
                try await sync(r)
                let held = try server.allRevisions().map { $0.json.canonicalText }.joined()
                reachedServer.formUnion(written.filter { held.contains("\"\($0)\"") })
            case .bundle(let from, let to):
                let revisions = CausalSort.sorted(try replicas[from].allRevisions())
                let directory = try replicas[from].keyDirectory()
                let bundleKeys = Set(revisions.map(\.dot.node)).compactMap { directory[$0] }.map {
                    KeyEntry(node: $0.node, publicKey: $0.publicKey)
                }
                _ = try replicas[to].receiveVerified(revisions, learning: bundleKeys, unconfirmed: true, now: now)
            case .copy(let r):
                let path = dir.file("copy\(copies.count)-r\(r).sqlite")
                try FileManager.default.copyItem(atPath: replicas[r].path, toPath: path)
                copies.append((r, path))
            case .restore(let r, let c):
                // A plain copy of the same laptop's file, put back in place (no backup mark).
                guard let copy = copies.filter({ $0.replica == r }).dropFirst(c % max(1, copies.filter { $0.replica == r }.count)).first
                else { continue }
                let path = replicas[r].path
                try replicas[r].close()
                try FileManager.default.removeItem(atPath: path)
                try FileManager.default.copyItem(atPath: copy.path, toPath: path)
                replicas[r] = try ReplicaStore.open(at: path)
            }
        }
        for _ in 0..<3 {
            for r in 0..<3 { try await sync(r) }
        }
        let states = try (replicas + [server]).map(Fixtures.canonicalState)
        #expect(Set(states).count == 1, "diverged after \(steps)")
        for store in replicas + [server] {
            let texts = try store.allRevisions().map { $0.json.canonicalText }.joined()
            for value in reachedServer.sorted() { #expect(texts.contains("\"\(value)\""), "\(value) lost after \(steps)") }
            // The in-process server keeps its key directory in the registry, not in device rows.
            guard store !== server else { continue }
            let report = try store.verify()
            #expect(report.isSound, "\(report.problems) after \(steps)")
        }
    }
}
