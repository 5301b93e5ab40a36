// FieldSync benchmarks: each figure beside a baseline measured in the same run, as a ratio.
// Absolute times on shared 2-core machines are noise on their own. See docs/PERFORMANCE.md.
import Crypto
import FieldSyncClient
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore
import FieldSyncTestSupport
import Foundation
import GRDB

let arguments = CommandLine.arguments
let scale = arguments.firstIndex(of: "--scale").flatMap { Int(arguments[$0 + 1]) } ?? 10_000
let work = try TemporaryDirectory("bench")
defer { work.remove() }

func seconds(_ body: () async throws -> Void) async rethrows -> Double {
    let start = ContinuousClock.now
    try await body()
    let d = start.duration(to: .now).components
    return Double(d.seconds) + Double(d.attoseconds) / 1e18
}

func peakRSSMegabytes() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
    else { return .nan }
    return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? .nan) / 1024
}

func report(_ what: String, _ value: Double, _ baseline: Double, target: String) {
    let ratio = value / baseline
    let figures = String(format: "%10.4f s  baseline %10.4f s  ratio %6.2f", value, baseline, ratio)
    print("| \(what.padding(toLength: 36, withPad: " ", startingAt: 0)) | \(figures) | target \(target) |")
}

/// A ~1 KB realistic incident, different per index.
func incident(_ i: Int) -> [FieldChange] {
    [
        .set(path: "title", value: .string("Incident \(i): house-to-house raid reported in a coastal village")),
        .set(path: "narrative", value: .string(String(repeating: "Witnesses describe armed men going from house to house. ", count: 12))),
        .set(path: "occurred.start", value: "2025-03-07~"),
        .set(path: "location.governorate", value: .string(i % 2 == 0 ? "Latakia" : "Tartus")),
        .set(path: "casualties.killed", value: .int(Int64(i % 40))),
        .add(path: "violations", element: "killing"),
    ]
}

/// Fills a replica with `count` revisions (one per new record), in transactions of 1000.
func fill(_ store: ReplicaStore, count: Int) throws {
    var made = 0
    while made < count {
        let n = min(1000, count - made)
        let ids = (0..<n).map { _ in RecordID.generate(millisecondsSince1970: 1_741_340_000_000) }
        let start = made
        _ = try store.commitLocal(records: ids, now: 1_741_340_000_000) { index, _ in
            (.put, try LocalEdit.operations(for: incident(start + index), current: nil, newEntryID: { "e" }), nil)
        }
        made += n
    }
}

print("FieldSync benchmarks, scale \(scale) revisions (\(ProcessInfo.processInfo.activeProcessorCount) cores)")

// 1. Local write: one durable add through the library API against one raw GRDB insert transaction.
do {
    let store = try ReplicaStore.create(at: work.file("local.sqlite"), name: "bench", now: 1)
    let raw = try DatabaseQueue(path: work.file("raw.sqlite"))
    try raw.write { db in try db.execute(sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)") }
    let body = JSONValue.array(incident(0).map { _ in "x" }).canonicalText + String(repeating: "y", count: 900)
    let n = 300
    let library = try await seconds {
        for i in 0..<n {
            _ = try store.commitLocal(record: RecordID.generate(millisecondsSince1970: 1), now: 1) { _ in
                (.put, try LocalEdit.operations(for: incident(i), current: nil, newEntryID: { "e" }), nil)
            }
        }
    }
    let baseline = try await seconds {
        for _ in 0..<n { try await raw.write { db in try db.execute(sql: "INSERT INTO t (body) VALUES (?)", arguments: [body]) } }
    }
    report("local write (add, per op)", library / Double(n), baseline / Double(n), target: "<= 3")
}

// The central node with `scale` revisions, and the unavoidable work to receive them.
let source = try ReplicaStore.create(at: work.file("source.sqlite"), name: "source", now: 1)
try fill(source, count: scale)
let texts = try source.missing(from: VersionVector(), limit: scale).texts
let revisions = try texts.map { try Revision(json: JSONValue(parsing: $0)) }
let sourceKey = try source.publicKey()

let baseline = try await seconds {
    let raw = try DatabaseQueue(path: work.file("bulk.sqlite"))
    try await raw.write { db in
        try db.execute(sql: "CREATE TABLE revision (seq INTEGER PRIMARY KEY, node TEXT, counter INTEGER, record TEXT, body TEXT, UNIQUE (node, counter))")
        for (r, text) in zip(revisions, texts) {
            try db.execute(
                sql: "INSERT INTO revision (node, counter, record, body) VALUES (?, ?, ?, ?)",
                arguments: [r.dot.node.rawValue, Int64(r.dot.counter), r.record.rawValue, text])
        }
    }
    // Signature checks on all cores.
    let chunks = stride(from: 0, to: revisions.count, by: max(1, revisions.count / 8)).map { Array(revisions[$0..<min($0 + max(1, revisions.count / 8), revisions.count)]) }
    try await withThrowingTaskGroup(of: Bool.self) { group in
        for chunk in chunks { group.addTask { chunk.allSatisfy { SignatureCheck.isValid($0, publicKeyBase64: sourceKey) } } }
        for try await ok in group { precondition(ok) }
    }
}

// 2. Initial push: the source replica to an empty central node over HTTP on 127.0.0.1.
let server = try await LiveServer.start(storePath: work.file("server.sqlite"))
try await server.enrol(source, as: "source")
let push = try await seconds {
    let transport = try Enrolling.transport(for: source)
    _ = try await SyncDriver(store: source, transport: transport, batchSize: 1000, retries: 0).run()
    await transport.shutdown()
}
report("initial push (\(scale) revisions)", push, baseline, target: "<= 2.5")

// 3. Initial pull: a fresh replica.
let fresh = try ReplicaStore.create(at: work.file("fresh.sqlite"), name: "fresh", now: 1)
try await server.enrol(fresh, as: "fresh")
let pull = try await seconds {
    let transport = try Enrolling.transport(for: fresh)
    _ = try await SyncDriver(store: fresh, transport: transport, batchSize: 1000, retries: 0).run()
    await transport.shutdown()
}
report("initial pull (\(scale) revisions)", pull, baseline, target: "<= 2.5")
print(String(format: "peak RSS of this process after the pull: %.0f MB (target <= 250 MB at 1,000,000)", peakRSSMegabytes()))

// 4. No-op sync at this size against a no-op at a tenth of it; 5. a small delta against no-op.
func syncOnce(_ store: ReplicaStore) async throws -> Double {
    try await seconds {
        let transport = try Enrolling.transport(for: store)
        _ = try await SyncDriver(store: store, transport: transport, retries: 0).run()
        await transport.shutdown()
    }
}
func median(_ body: () async throws -> Double) async rethrows -> Double {
    var samples: [Double] = []
    for _ in 0..<7 { samples.append(try await body()) }
    return samples.sorted()[3]
}
let noOpLarge = try await median { try await syncOnce(fresh) }
let smallServer = try await LiveServer.start(storePath: work.file("small-server.sqlite"))
let small = try ReplicaStore.create(at: work.file("small.sqlite"), name: "small", now: 1)
try fill(small, count: max(1, scale / 10))
try await smallServer.enrol(small, as: "small")
_ = try await syncOnce(small)
let noOpSmall = try await median { try await syncOnce(small) }
report("no-op sync at \(scale) vs \(scale / 10)", noOpLarge, noOpSmall, target: "<= 1.5")
try fill(fresh, count: 10)
let delta = try await syncOnce(fresh)
report("10-revision delta vs no-op", delta, noOpLarge, target: "<= 2")

// 6. Wire size: a pull response against the same revisions as compact JSON.
let compact = texts.reduce(0) { $0 + $1.utf8.count } + texts.count + 2
let response = PullResponse(revisions: revisions, more: false, knowledge: try source.knowledge()).json.canonicalBytes.count
print(String(format: "wire size of a pull of %d revisions: %d bytes vs %d compact JSON, ratio %.3f (target <= 1.2)", scale, response, compact, Double(response) / Double(compact)))

await server.stop()
await smallServer.stop()
