// FieldSync benchmarks: each figure beside a baseline measured in the same run, as a ratio.
// Absolute times on shared 2-core machines are noise on their own. See docs/PERFORMANCE.md.
//
//   fieldsync-bench [--scale N]          the whole suite at an archive of N revisions
//   fieldsync-bench --sync [--scale N] [--rounds R]
//                                        only the sync figures: initial push and pull (with the pull
//                                        against the one-core floor), no-op and small delta
//   fieldsync-bench --receive [--scale N] [--rounds R]
//                                        only the write transaction of a pull, signatures checked
//                                        ahead, against a raw insert (best of R rounds, default 5)
//   fieldsync-bench --ed25519 N          N signatures of one key checked on one core: the tabulated
//                                        key (Ed25519VerifyingKey) against swift-crypto
//   fieldsync-bench --attachments [M T R] only section 9, attachments: memory at an M MiB file,
//                                        throughput at T MiB, resumption at R MiB (4096 1024 256)
//   fieldsync-bench --postgres [--scale N] [--rounds R] [--clients C]
//                                        only section 10, the PostgreSQL central node against SQLite
//   fieldsync-bench --postgres-noop [--scale N]
//                                        only its no-op sync at N against min(10,000, N/10)
//   fieldsync-bench --pull-into PATH     (internal) one sync of the enrolled replica at PATH, in a
//                                        child process so that its peak memory is the client's alone;
//                                        with --sealed, an encrypted one whose key comes on stdin
import Crypto
import FieldSyncClient
import FieldSyncCore
import FieldSyncEd25519
import FieldSyncProtocol
import FieldSyncStore
import FieldSyncTestSupport
import FieldSyncVault
import Foundation
import GRDB

let arguments = CommandLine.arguments

func seconds(_ body: () async throws -> Void) async rethrows -> Double {
    let start = ContinuousClock.now
    try await body()
    let d = start.duration(to: .now).components
    return Double(d.seconds) + Double(d.attoseconds) / 1e18
}

/// Prints a line at once (stdout is a pipe when the output is saved with tee).
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func time(_ body: () throws -> Void) rethrows -> Double {
    let start = ContinuousClock.now
    try body()
    let d = start.duration(to: .now).components
    return Double(d.seconds) + Double(d.attoseconds) / 1e18
}

func peakRSSMegabytes() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
    else { return .nan }
    return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? .nan) / 1024
}

// The attachment section's children (server, attach, upload, fetch), each its own process.
if try await attachmentChild(arguments) { exit(0) }

// The child: sync the replica at PATH once and report the client's own figures.
if let index = arguments.firstIndex(of: "--pull-into") {
    var key: StoreKey?
    if arguments.contains("--sealed"), let line = readLine() {
        key = try StoreKey(
            rawBytes: stride(from: 0, to: line.count, by: 2).map { offset in
                let start = line.index(line.startIndex, offsetBy: offset)
                return UInt8(line[start..<line.index(start, offsetBy: 2)], radix: 16)!
            })
    }
    let store = try ReplicaStore.open(at: arguments[index + 1], key: key)
    let transport = try Enrolling.transport(for: store)
    let report = try await SyncDriver(store: store, transport: transport, batchSize: 1000, retries: 0).run()
    await transport.shutdown()
    emit("RESULT pulled \(report.pulled) bytes \(transport.bytesReceived) rss \(peakRSSMegabytes())")
    exit(0)
}

let scale = arguments.firstIndex(of: "--scale").flatMap { Int(arguments[$0 + 1]) } ?? 10_000
let work = try TemporaryDirectory("bench")
defer { work.remove() }

func report(_ what: String, _ value: Double, _ baseline: Double, target: String) {
    let ratio = value / baseline
    let figures = String(format: "%10.4f s  baseline %10.4f s  ratio %6.2f", value, baseline, ratio)
    emit("| \(what.padding(toLength: 40, withPad: " ", startingAt: 0)) | \(figures) | target \(target) |")
}

func note(_ text: String) {
    emit("  \(text)")
}

// `--ed25519 N`: N signatures of one key (1.3 KB messages) checked on one core by swift-crypto
// (BoringSSL's `ED25519_verify`) and by `Ed25519VerifyingKey` (its table built inside the timing),
// alternated over five rounds; the median of the per-round ratios.
if let index = arguments.firstIndex(of: "--ed25519"), let count = Int(arguments[index + 1]) {
    let privateKey = Curve25519.Signing.PrivateKey()
    let items = try (0..<count).map { i in
        let message = Array(
            "revision \(i): \(String(repeating: "Witnesses describe armed men going from house to house. ", count: 22))".utf8)
        return (message: message, signature: try privateKey.signature(for: message))
    }
    let raw = privateKey.publicKey.rawRepresentation
    var ratios: [Double] = []
    for round in 1...5 {
        let boring = time { verifyOnOneCore(items, key: raw) }
        let tabulated = time {
            let key = Ed25519VerifyingKey(rawRepresentation: raw)!
            for item in items { precondition(key.isValidSignature(item.signature, for: item.message)) }
        }
        ratios.append(tabulated / boring)
        report("Ed25519 checks on one core, round \(round)", tabulated, boring, target: "(swift-crypto = 1)")
    }
    note(String(format: "median ratio %.2f (tabulated key / swift-crypto), %d signatures", ratios.sorted()[2], count))
    exit(0)
}

/// A ~1.3 KB realistic incident, different per index.
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

/// Fills a replica with `count` revisions (one per new record), in transactions of 1000. Record
/// ids are UUIDv7 made at each incident's writing time, a second apart, as in real use; with
/// `--random-ids` they all share one millisecond, so they sort in random order (the worst case for
/// the indexes).
let randomIDs = arguments.contains("--random-ids")
func fill(_ store: ReplicaStore, count: Int) throws {
    var made = 0
    while made < count {
        let n = min(1000, count - made)
        let ids = (0..<n).map { i in RecordID.generate(millisecondsSince1970: 1_741_340_000_000 + (randomIDs ? 0 : Int64(made + i) * 1000))
        }
        let start = made
        _ = try store.commitLocal(records: ids, now: 1_741_340_000_000) { index, _ in
            (.put, try LocalEdit.operations(for: incident(start + index), current: nil, newEntryID: { "e" }), nil)
        }
        made += n
    }
}

/// Edits `path` of every record of `store` to `value`, one revision per record, in transactions of 1000.
func editAll(_ store: ReplicaStore, path: String, value: String) throws {
    let ids = try store.records().map(\.id)
    for start in stride(from: 0, to: ids.count, by: 1000) {
        let slice = Array(ids[start..<min(start + 1000, ids.count)])
        _ = try store.commitLocal(records: slice, now: 1_741_340_100_000) { _, current in
            (.put, try LocalEdit.operations(for: [.set(path: path, value: .string(value))], current: current, newEntryID: { "e" }), nil)
        }
    }
}

/// Every revision of `source`, page by page, without holding them all.
func forEachPage(of source: ReplicaStore, _ body: ([String], [Revision]) throws -> Void) throws {
    var knowledge = VersionVector()
    while true {
        let page = try source.missing(from: knowledge, limit: 10_000)
        if page.texts.isEmpty { return }
        let revisions = try page.texts.map { try Revision(json: JSONValue(parsing: $0)) }
        try body(page.texts, revisions)
        for revision in revisions { knowledge.add(revision.dot) }
        if !page.more { return }
    }
}

/// Runs `--pull-into` in a child process; returns its wall time and what it printed.
func childSync(_ path: String, key: StoreKey? = nil) async throws -> (seconds: Double, pulled: Int, bytes: Int, rssMegabytes: Double) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
    process.arguments = ["--pull-into", path] + (key == nil ? [] : ["--sealed"])
    let output = Pipe()
    let input = Pipe()
    process.standardOutput = output
    process.standardInput = input
    let elapsed = try time {
        try process.run()
        if let key { input.fileHandleForWriting.write(Data((key.rawBytes.map { String(format: "%02x", $0) }.joined() + "\n").utf8)) }
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    let line = text.split(separator: "\n").last(where: { $0.hasPrefix("RESULT ") }) ?? ""
    let words = line.split(separator: " ")
    guard process.terminationStatus == 0, words.count == 7, let pulled = Int(words[2]), let bytes = Int(words[4]),
        let rss = Double(words[6])
    else {
        throw StoreError(.invalid, "the pull child failed: \(text)")
    }
    return (elapsed, pulled, bytes, rss)
}

// `--attachments [MEMORY_MiB THROUGHPUT_MiB RESUMPTION_MiB]`: only section 9 (default 4096 1024 256).
if let index = arguments.firstIndex(of: "--attachments") {
    let sizes = arguments[(index + 1)...].prefix(3).compactMap { Int($0) }
    try await attachmentSection(
        memoryMiB: sizes.count > 0 ? sizes[0] : 4096, throughputMiB: sizes.count > 1 ? sizes[1] : 1024,
        resumptionMiB: sizes.count > 2 ? sizes[2] : 256)
    exit(0)
}

// `--encryption N`: only section 8, on an archive of N revisions pushed to a fresh central node.
if let index = arguments.firstIndex(of: "--encryption"), let count = Int(arguments[index + 1]) {
    let archive = try ReplicaStore.create(at: work.file("enc-source.sqlite"), name: "source", now: 1)
    try fill(archive, count: count)
    let serverPath = work.file("enc-server.sqlite")
    let central = try await LiveServer.start(storePath: serverPath)
    try await central.enrol(archive, as: "enc-source")
    let transport = try Enrolling.transport(for: archive)
    _ = try await SyncDriver(store: archive, transport: transport, batchSize: 1000, retries: 0).run()
    await transport.shutdown()
    await central.stop()
    try await encryptionSection(source: archive, sourceKey: try archive.publicKey(), scale: count, serverStore: serverPath)
    exit(0)
}

// `--postgres [--clients C]`: only section 10, the PostgreSQL central node against the SQLite one
// at `--scale` (push, pull, no-op at scale, C clients' no-op p99; C defaults to 50).
if arguments.contains("--postgres-noop") {
    try await postgresNoOpSection(scale: scale)
    exit(0)
}
if arguments.contains("--postgres") {
    let rounds = arguments.firstIndex(of: "--rounds").flatMap { Int(arguments[$0 + 1]) } ?? 1
    let clients = arguments.firstIndex(of: "--clients").flatMap { Int(arguments[$0 + 1]) } ?? 50
    try await postgresSection(scale: scale, rounds: rounds, clientCount: clients)
    exit(0)
}

emit("FieldSync benchmarks, scale \(scale) revisions (\(ProcessInfo.processInfo.activeProcessorCount) cores)")
/// `--sync`: only the sync figures (initial push and pull, no-op and small delta), issue 19's.
let syncOnly = arguments.contains("--sync")

// 1. Local write: one durable add through the library API against one raw GRDB insert transaction.
if !syncOnly {
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

// 2. Conflict-heavy import: 10,000 revisions that all conflict with local edits of the same field,
// against importing 10,000 that conflict with nothing. Both through a bundle file.
if !syncOnly {
    let count = 10_000
    let origin = try ReplicaStore.create(at: work.file("origin.sqlite"), name: "origin", now: 1)
    try fill(origin, count: count)
    let plain = try ReplicaStore.create(at: work.file("plain.sqlite"), name: "plain", now: 1)
    let edited = try ReplicaStore.create(at: work.file("edited.sqlite"), name: "edited", now: 1)
    let key = KeyEntry(node: try origin.identity().node, publicKey: try origin.publicKey())
    let everything = try origin.missing(from: VersionVector(), limit: count).texts.map { try Revision(json: JSONValue(parsing: $0)) }
    for store in [plain, edited] {
        for start in stride(from: 0, to: count, by: 1000) {
            _ = try store.receiveVerified(Array(everything[start..<min(start + 1000, count)]), learning: [key], now: 2)
        }
    }
    let shared = try origin.knowledge()
    try editAll(origin, path: "title", value: "Raid on the harbour district (origin's reading)")
    try editAll(edited, path: "title", value: "Raid on the harbour district (edited's reading)")
    let bundle = BundleFile(
        from: key.node, knowledge: try origin.knowledge(),
        revisions: try origin.missing(from: shared, limit: count).texts.map { try Revision(json: JSONValue(parsing: $0)) }, created: 3,
        keys: [key]
    ).fileBytes
    func importBundle(into store: ReplicaStore) throws -> ReceiveOutcome {
        let file = try BundleFile(fileBytes: bundle)
        return try store.receiveVerified(file.revisions, learning: file.keys, now: 4)
    }
    var plainOutcome: ReceiveOutcome?
    var editedOutcome: ReceiveOutcome?
    let clean = try time { plainOutcome = try importBundle(into: plain) }
    let conflicting = try time { editedOutcome = try importBundle(into: edited) }
    precondition(plainOutcome?.accepted == count && plainOutcome?.newConflicts == 0)
    precondition(editedOutcome?.accepted == count && editedOutcome?.newConflicts == count)
    report("conflict-heavy import (10,000 conflicts)", conflicting, clean, target: "<= 2")
}

// Pull pages against many lagging nodes (issue 14): paging a fresh replica's whole pull out of a
// central store holding 300 nodes x 20 revisions, against one holding 1 node x 6,000; the cost of a
// page must not grow with the number of nodes; target at most 1.5 times as long.
if !syncOnly {
    func hub(nodes: Int, each: Int, name: String) throws -> ReplicaStore {
        let store = try ReplicaStore.create(at: work.file("\(name).sqlite"), name: name, now: 1)
        for n in 0..<nodes {
            let writer = try ReplicaStore.create(at: work.file("\(name)-w\(n).sqlite"), name: "w\(n)", now: 1)
            try fill(writer, count: each)
            _ = try store.receive(try writer.allRevisions(), now: 2)
        }
        return store
    }
    func pageThrough(_ store: ReplicaStore) throws -> Int {
        var peer = VersionVector()
        var sent = 0
        while true {
            let page = try store.missing(from: peer, limit: 1000)
            for text in page.texts { peer.add(try Revision(json: JSONValue(parsing: text)).dot) }
            sent += page.texts.count
            if !page.more { return sent }
        }
    }
    let many = try hub(nodes: 300, each: 20, name: "many")
    let one = try hub(nodes: 1, each: 6_000, name: "one")
    var sentMany = 0
    var sentOne = 0
    let manyTime = try time { sentMany = try pageThrough(many) }
    let oneTime = try time { sentOne = try pageThrough(one) }
    report("pull pages, 300 nodes x 20 vs 1 x 6,000", manyTime, oneTime, target: "<= 1.5")
    note("paged \(sentMany) and \(sentOne) revisions")
}

// History replay of one record (issue 14): `show --history`, `conflicts`, export and `verify` order a
// record's revisions canonically. 40,000 revisions of one record by three replicas that sync now and
// then, against 4,000 of the same kind; target at most 15 times as long (O(n log n), not O(n²)).
if !syncOnly {
    func oneRecordHistory(_ count: Int) -> [Revision] {
        let record = RecordID("01959a3c-7e00-7a00-8000-000000000001")!
        let nodes = (0..<3).map { NodeID(String(format: "%016x", 0xb000 + $0))! }
        var seen = [VersionVector](repeating: VersionVector(), count: 3)
        var counters = [UInt64](repeating: 0, count: 3)
        var all: [Revision] = []
        var state: UInt64 = 42
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
        while all.count < count {
            let n = Int(next() % 3)
            if next() % 3 == 0 {
                seen[n].merge(seen[Int(next() % 3)])
                continue
            }
            counters[n] += 1
            let dot = Dot(node: nodes[n], counter: counters[n])
            all.append(
                Revision(
                    dot: dot, record: record, operations: [.set(path: "title", value: .string("t\(all.count)"))],
                    context: seen[n], author: "A", time: 1_741_340_000_000 + Int64(next() % 1000)))
            seen[n].add(dot)
        }
        return all.reversed()
    }
    let small = oneRecordHistory(4_000)
    let large = oneRecordHistory(40_000)
    // Best of three each: the first run of the smaller one also warms caches and the allocator.
    let smallTime = (0..<3).map { _ in time { _ = HistoryStep.canonicalOrder(small) } }.min()!
    let largeTime = (0..<3).map { _ in time { _ = HistoryStep.canonicalOrder(large) } }.min()!
    report("history replay, 40,000 vs 4,000 (1 record)", largeTime, smallTime, target: "<= 15")
}

// The central node's archive: a source replica with `scale` revisions, and the unavoidable work to
// receive them: a raw GRDB bulk insert of the same rows in one transaction plus verifying their
// signatures with swift-crypto on all cores (read, parsed and encoded page by page, outside the timing).
let source = try ReplicaStore.create(at: work.file("source.sqlite"), name: "source", now: 1)
let fillTime = try time { try fill(source, count: scale) }
note(String(format: "filled the source replica with %d signed revisions in %.1f s", scale, fillTime))
let sourceKey = try source.publicKey()
let sourcePublicKey = Data(base64Encoded: sourceKey)!

// `--receive [--rounds R]`: the write transaction alone, the serial part of both a pull (on the
// replica) and a push (on the central node). A fresh replica receives the archive page by page
// with every signature already checked, as the pull's pipeline hands pages over; against a raw
// insert of the same rows in one transaction. Best of R rounds each (default 5): the least time is
// the steadiest reading on a shared machine, where other work only ever adds.
if arguments.contains("--receive") {
    let rounds = arguments.firstIndex(of: "--rounds").flatMap { Int(arguments[$0 + 1]) } ?? 5
    var pages: [(texts: [String], revisions: [Revision])] = []
    // Pages of 1,000, as `fieldsync sync` pulls them.
    try forEachPage(of: source) { texts, revisions in
        for start in stride(from: 0, to: texts.count, by: 1000) {
            let end = min(start + 1000, texts.count)
            pages.append((Array(texts[start..<end]), Array(revisions[start..<end])))
        }
    }
    let author = KeyEntry(node: try source.identity().node, publicKey: sourceKey)
    // Checked once, before any timing: a check counts wherever the node's key is the same.
    var keys = try ReplicaStore.create(at: work.file("receive-keys.sqlite"), name: "keys", now: 1).signingKeys()
    keys.entries[author.node] = author
    var knowledge = VersionVector()
    var checked: [CheckedSignatures] = []
    for page in pages {
        checked.append(keys.checkSignatures(page.revisions, skipping: knowledge))
        for revision in page.revisions { knowledge.add(revision.dot) }
    }
    // A mark for a profiler attached by a script (`perf record` from here to the figure).
    note("receiving")
    var receiving: [Double] = []
    var inserting: [Double] = []
    for round in 1...rounds {
        let replica = try ReplicaStore.create(at: work.file("receive-\(round).sqlite"), name: "receiver", now: 1)
        receiving.append(
            try time {
                for (index, page) in pages.enumerated() {
                    let outcome = try replica.receiveVerified(
                        page.revisions, learning: index == 0 ? [author] : [], prechecked: checked[index], now: 2)
                    precondition(outcome.accepted == page.revisions.count)
                }
            })
        try replica.close()
        let raw = try DatabaseQueue(path: work.file("receive-raw-\(round).sqlite"))
        try raw.write { db in
            try db.execute(
                sql:
                    "CREATE TABLE revision (seq INTEGER PRIMARY KEY, node TEXT, counter INTEGER, record TEXT, body TEXT, UNIQUE (node, counter))"
            )
        }
        inserting.append(
            try time {
                try raw.write { db in
                    let insert = try db.makeStatement(sql: "INSERT INTO revision (node, counter, record, body) VALUES (?, ?, ?, ?)")
                    for page in pages {
                        for (r, text) in zip(page.revisions, page.texts) {
                            try insert.execute(arguments: [r.dot.node.rawValue, Int64(r.dot.counter), r.record.rawValue, text])
                        }
                    }
                }
            })
    }
    let best = receiving.min()!
    note(
        String(
            format: "receive transactions, %d rounds: best %.3f s, median %.3f s (%.1f µs per revision)", rounds, best,
            receiving.sorted()[rounds / 2], best / Double(scale) * 1e6))
    report("receive, signatures checked ahead", best, inserting.min()!, target: "(none: the serial part of push and pull)")
    exit(0)
}

/// The swift-crypto work alone: Ed25519 checks of ready message bytes, split over all cores.
func verifyOnAllCores(_ items: [(message: [UInt8], signature: Data)], key: Data) {
    let cores = ProcessInfo.processInfo.activeProcessorCount
    let size = (items.count + cores - 1) / cores
    DispatchQueue.concurrentPerform(iterations: cores) { core in
        let key = try! Curve25519.Signing.PublicKey(rawRepresentation: key)
        for item in items[min(core * size, items.count)..<min((core + 1) * size, items.count)] {
            precondition(key.isValidSignature(item.signature, for: item.message))
        }
    }
}
/// The same checks one after another on one core, as a receiver that does not parallelise would.
func verifyOnOneCore(_ items: [(message: [UInt8], signature: Data)], key: Data) {
    let key = try! Curve25519.Signing.PublicKey(rawRepresentation: key)
    for item in items { precondition(key.isValidSignature(item.signature, for: item.message)) }
}
/// The unavoidable work of receiving the archive, into a new file named `name`: the raw insert plus
/// the signature checks on all cores (`seconds`, issue 7's baseline) and, measured in the same pass,
/// on one core (`floor`, issue 19's: the least a receiver that verifies one signature at a time costs).
func measureBaseline(_ name: String) throws -> (seconds: Double, floor: Double, compactBytes: Int) {
    var compactBytes = 0
    let raw = try DatabaseQueue(path: work.file(name))
    try raw.write { db in
        try db.execute(
            sql:
                "CREATE TABLE revision (seq INTEGER PRIMARY KEY, node TEXT, counter INTEGER, record TEXT, body TEXT, UNIQUE (node, counter))"
        )
    }
    var inserting = 0.0
    var verifying = 0.0
    var verifyingOnOneCore = 0.0
    try raw.writeWithoutTransaction { db in
        inserting += try time { try db.beginTransaction() }
        let insert = try db.makeStatement(sql: "INSERT INTO revision (node, counter, record, body) VALUES (?, ?, ?, ?)")
        try forEachPage(of: source) { texts, revisions in
            compactBytes += texts.reduce(0) { $0 + $1.utf8.count + 1 }
            inserting += try time {
                for (r, text) in zip(revisions, texts) {
                    try insert.execute(arguments: [r.dot.node.rawValue, Int64(r.dot.counter), r.record.rawValue, text])
                }
            }
            let items = revisions.map { ($0.signedBytes, Data(base64Encoded: $0.signature!)!) }
            verifying += time { verifyOnAllCores(items, key: sourcePublicKey) }
            verifyingOnOneCore += time { verifyOnOneCore(items, key: sourcePublicKey) }
        }
        inserting += try time { try db.commit() }
    }
    note(
        String(
            format: "baseline: raw bulk insert %.2f s + signature checks on all cores %.2f s (on one core %.2f s)", inserting, verifying,
            verifyingOnOneCore))
    return (inserting + verifying, inserting + verifyingOnOneCore, compactBytes)
}

// 3. Initial push: the source replica to an empty central node over HTTP on 127.0.0.1; 4. initial
// pull: a fresh replica, synced by a child process so that its peak RSS is the client's. With
// `--rounds R`, baseline, push and pull are measured R times (new files each time) and the median
// ratios reported, since single runs on a shared machine move by 10-15 %.
let rounds = arguments.firstIndex(of: "--rounds").flatMap { Int(arguments[$0 + 1]) } ?? 1
var pushRatios: [Double] = []
var pullRatios: [Double] = []
var server: LiveServer!
var fresh: ReplicaStore!
var pull: (seconds: Double, pulled: Int, bytes: Int, rssMegabytes: Double)!
var compactBytes = 0
for round in 1...rounds {
    await server?.stop()
    let baseline = try measureBaseline("bulk-\(round).sqlite")
    compactBytes = baseline.compactBytes
    server = try await LiveServer.start(storePath: work.file("server-\(round).sqlite"))
    try await server.enrol(source, as: "source-\(round)")
    // Marks for a profiler attached by a script (`perf record -a` from "pushing" to the push's figure).
    note("pushing")
    let push = try await seconds {
        let transport = try Enrolling.transport(for: source)
        _ = try await SyncDriver(store: source, transport: transport, batchSize: 1000, retries: 0).run()
        await transport.shutdown()
    }
    report("initial push (\(scale) revisions)", push, baseline.seconds, target: "<= 2.0")
    let freshPath = work.file("fresh-\(round).sqlite")
    fresh = try ReplicaStore.create(at: freshPath, name: "fresh", now: 1)
    try await server.enrol(fresh, as: "fresh-\(round)")
    note("pulling")
    pull = try await childSync(freshPath)
    precondition(pull.pulled == scale)
    report("initial pull (\(scale) revisions)", pull.seconds, baseline.seconds, target: "(issue 7: <= 2.5)")
    report("initial pull vs the one-core floor", pull.seconds, baseline.floor, target: "<= 0.75")
    note(String(format: "peak RSS of the pulling client: %.0f MB (target <= 250 MB at 1,000,000)", pull.rssMegabytes))
    pushRatios.append(push / baseline.seconds)
    pullRatios.append(pull.seconds / baseline.floor)
}
if rounds > 1 {
    emit(
        String(
            format:
                "| median of %d rounds: initial push ratio %.2f (target <= 2.0), initial pull vs one-core floor %.2f (target <= 0.75) |",
            rounds, pushRatios.sorted()[rounds / 2], pullRatios.sorted()[rounds / 2]))
}
let compact = compactBytes + 1
emit(
    String(
        format: "| %@ | %10d B  baseline %10d B  ratio %6.3f | target <= 1.2 |",
        "wire size of the pull (response bodies)".padding(toLength: 40, withPad: " ", startingAt: 0), pull.bytes, compact,
        Double(pull.bytes) / Double(compact)))

// 5. No-op sync at this size against a no-op at a small archive; 6. a small delta against no-op.
func syncOnce(_ store: ReplicaStore) async throws -> Double {
    try await seconds {
        let transport = try Enrolling.transport(for: store)
        _ = try await SyncDriver(store: store, transport: transport, retries: 0).run()
        await transport.shutdown()
    }
}
func median(_ body: () async throws -> Double) async rethrows -> Double {
    var samples: [Double] = []
    for _ in 0..<9 { samples.append(try await body()) }
    return samples.sorted()[4]
}
let noOpLarge = try await median { try await syncOnce(fresh) }
let smallScale = min(10_000, max(1, scale / 10))
let smallServer = try await LiveServer.start(storePath: work.file("small-server.sqlite"))
let small = try ReplicaStore.create(at: work.file("small.sqlite"), name: "small", now: 1)
try fill(small, count: smallScale)
try await smallServer.enrol(small, as: "small")
_ = try await syncOnce(small)
let noOpSmall = try await median { try await syncOnce(small) }
report("no-op sync at \(scale) vs \(smallScale)", noOpLarge, noOpSmall, target: "<= 1.5")
var deltas: [Double] = []
for _ in 0..<5 {
    try fill(fresh, count: 10)
    deltas.append(try await syncOnce(fresh))
}
report("10-revision delta vs no-op at \(scale)", deltas.sorted()[2], noOpLarge, target: "<= 2")

await server.stop()
await smallServer.stop()

// 7. Many registered nodes (issue 14): a central node with 10,000 enrolled devices against one with
// 10. The key directory is learned once (its certificates issued on that first read) and then
// answered 304 by its entity tag, so a no-op sync and a pulled batch of 10 revisions may take at
// most 1.5 times as long with 10,000 nodes, and move no directory.
if !syncOnly {
    func registeredNodes(_ count: Int, name: String) async throws -> (server: LiveServer, client: ReplicaStore, writer: ReplicaStore) {
        let path = work.file("\(name)-server.sqlite")
        let created = try ReplicaStore.create(at: path, name: "central", now: 1)
        try created.close()
        // Bulk rows, as years of enrolments would leave them; certificates come on the first read.
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in
            try db.execute(sql: "INSERT INTO account (name, role, created) VALUES ('bulk', 'documenter', 1)")
            for i in 0..<count {
                let key = DeviceKey.generate().publicKeyBase64
                let node = NodeBinding.fresh(publicKey: key).node
                try db.execute(
                    sql: "INSERT INTO device (node, account, public_key, token_hash, enrolled) VALUES (?, 'bulk', ?, ?, 1)",
                    arguments: [node.rawValue, key, "bulk-\(i)"])
            }
        }
        try queue.close()
        let server = try await LiveServer.start(storePath: path)
        let client = try ReplicaStore.create(at: work.file("\(name)-client.sqlite"), name: "client", now: 1)
        let writer = try ReplicaStore.create(at: work.file("\(name)-writer.sqlite"), name: "writer", now: 1)
        try await server.enrol(client, as: "client")
        try await server.enrol(writer, as: "writer")
        return (server, client, writer)
    }
    func syncMeasured(_ store: ReplicaStore) async throws -> (seconds: Double, bytes: Int) {
        let transport = try Enrolling.transport(for: store)
        let start = ContinuousClock.now
        _ = try await SyncDriver(store: store, transport: transport, retries: 0).run()
        let d = start.duration(to: .now).components
        let elapsed = Double(d.seconds) + Double(d.attoseconds) / 1e18
        let bytes = transport.bytesReceived
        await transport.shutdown()
        return (elapsed, bytes)
    }
    var figures: [Int: (first: Double, firstBytes: Int, noOp: Double, batch: Double, batchBytes: Int)] = [:]
    for count in [10, 10_000] {
        let (node, client, writer) = try await registeredNodes(count, name: "nodes\(count)")
        try fill(writer, count: 1)
        _ = try await syncMeasured(writer)
        let first = try await syncMeasured(client)
        let noOp = try await median { try await syncMeasured(client).seconds }
        var batches: [(seconds: Double, bytes: Int)] = []
        for _ in 0..<5 {
            try fill(writer, count: 10)
            _ = try await syncMeasured(writer)
            batches.append(try await syncMeasured(client))
        }
        let batch = batches.sorted { $0.seconds < $1.seconds }[2]
        figures[count] = (first.seconds, first.bytes, noOp, batch.seconds, batch.bytes)
        await node.stop()
    }
    let large = figures[10_000]!
    let tiny = figures[10]!
    report("no-op sync, 10,000 registered nodes vs 10", large.noOp, tiny.noOp, target: "<= 1.5")
    report("pulled batch of 10, 10,000 registered nodes vs 10", large.batch, tiny.batch, target: "<= 1.5")
    note(
        String(
            format: "first sync (learns the directory): %.3f s, %d bytes with 10,000 nodes; %.3f s, %d bytes with 10", large.first,
            large.firstBytes, tiny.first, tiny.firstBytes))
    note("a pulled batch moved \(large.batchBytes) bytes with 10,000 nodes and \(tiny.batchBytes) with 10: the directory is not sent again")
}

if !syncOnly {
    try await encryptionSection(source: source, sourceKey: sourceKey, scale: scale, serverStore: work.file("server-\(rounds).sqlite"))
}

// 8. Encryption at rest (issue 15): unlocking, and the same work on an encrypted replica against a
// plaintext one in this run. Then a wipe of the encrypted replica that pulled everything.
func encryptionSection(source: ReplicaStore, sourceKey: String, scale: Int, serverStore: String) async throws {
    let kdf = PassphraseKDF.calibrated()
    let keyFile = try KeyFile.make(at: work.file("unlock.keys"), passphrase: "bench passphrase", dataKey: .random(), kdf: kdf)
    var unlocks: [Double] = []
    for _ in 0..<3 { unlocks.append(try time { _ = try keyFile.open(passphrase: "bench passphrase") }) }
    let minimum = try time {
        _ = try PassphraseKDF(log2N: PassphraseKDF.minimumLog2N).deriveKey(from: "x", salt: Array(repeating: 0, count: 32))
    }
    report("unlock (calibrated N=2^\(kdf.log2N)) vs N=2^17", unlocks.sorted()[1], minimum, target: "0.5-1 s")

    // Local write, bundle import and initial pull, each on a plaintext and an encrypted replica,
    // alternated over three rounds (new files each time); the median ratio is reported, since one run
    // on a shared machine moves by 10-15 %.
    let n = 300
    func adds(_ store: ReplicaStore) throws -> Double {
        try time {
            for i in 0..<n {
                _ = try store.commitLocal(record: RecordID.generate(millisecondsSince1970: 1), now: 1) { _ in
                    (.put, try LocalEdit.operations(for: incident(i), current: nil, newEntryID: { "e" }), nil)
                }
            }
        }
    }
    let bundle = BundleFile(
        from: try source.identity().node, knowledge: try source.knowledge(), revisions: try source.allRevisions(), created: 1,
        keys: [KeyEntry(node: try source.identity().node, publicKey: sourceKey)]
    ).fileBytes
    func importAll(_ store: ReplicaStore) throws -> Double {
        try time {
            let file = try BundleFile(fileBytes: bundle)
            let accepted = try store.receiveVerified(file.revisions, learning: file.keys, now: 2).accepted
            precondition(accepted == scale)
        }
    }
    let central = try await LiveServer.start(storePath: serverStore)
    var writes: [(Double, Double)] = []
    var imports: [(Double, Double)] = []
    var pulls: [(Double, Double)] = []
    var pulled = 0
    var rss = (0.0, 0.0)
    var sealedKey = StoreKey.random()
    var sealedPath = ""
    for round in 1...3 {
        let plainWrite = try adds(try ReplicaStore.create(at: work.file("write-plain-\(round).sqlite"), name: "w", now: 1))
        let sealedWrite = try adds(
            try ReplicaStore.create(at: work.file("write-sealed-\(round).sqlite"), name: "w", now: 1, key: .random()))
        writes.append((sealedWrite / Double(n), plainWrite / Double(n)))
        let plainImport = try importAll(try ReplicaStore.create(at: work.file("import-plain-\(round).sqlite"), name: "i", now: 1))
        let sealedImport = try importAll(
            try ReplicaStore.create(at: work.file("import-sealed-\(round).sqlite"), name: "i", now: 1, key: .random()))
        imports.append((sealedImport, plainImport))
        let plainPath = work.file("pull-plain-\(round).sqlite")
        let plainReplica = try ReplicaStore.create(at: plainPath, name: "p", now: 1)
        try await central.enrol(plainReplica, as: "pull-plain-\(round)")
        try plainReplica.close()
        sealedKey = StoreKey.random()
        sealedPath = work.file("pull-sealed-\(round).sqlite")
        let sealedReplica = try ReplicaStore.create(at: sealedPath, name: "s", now: 1, key: sealedKey)
        try await central.enrol(sealedReplica, as: "pull-sealed-\(round)")
        try sealedReplica.close()
        let plainPull = try await childSync(plainPath)
        let sealedPull = try await childSync(sealedPath, key: sealedKey)
        precondition(sealedPull.pulled == plainPull.pulled && plainPull.pulled >= scale)
        pulls.append((sealedPull.seconds, plainPull.seconds))
        pulled = plainPull.pulled
        rss = (sealedPull.rssMegabytes, plainPull.rssMegabytes)
    }
    await central.stop()
    func medianPair(_ pairs: [(Double, Double)]) -> (Double, Double) { pairs.sorted { $0.0 / $0.1 < $1.0 / $1.1 }[pairs.count / 2] }
    let write = medianPair(writes)
    report("local write, encrypted vs plaintext", write.0, write.1, target: "<= 1.25")
    let imported = medianPair(imports)
    report("bundle import (\(scale)), encrypted vs plaintext", imported.0, imported.1, target: "<= 1.25")
    let pull = medianPair(pulls)
    report("initial pull (\(pulled)), encrypted vs plaintext", pull.0, pull.1, target: "<= 1.25")
    note(
        String(
            format: "each the median of 3 alternated rounds; peak RSS of the pulling client: %.0f MB encrypted, %.0f MB plaintext", rss.0,
            rss.1))

    // Wipe, as `fieldsync wipe --yes` does it: the key file overwritten and flushed, then the files removed.
    let sealedFile = try KeyFile.make(at: KeyFile.path(forStore: sealedPath), passphrase: "p", dataKey: sealedKey, kdf: .init(log2N: 17))
    try sealedFile.create()
    let replicaBytes = (try FileManager.default.attributesOfItem(atPath: sealedPath)[.size] as? Int) ?? 0
    let wipe = try time {
        try KeyFile.destroy(at: sealedFile.path)
        for suffix in ["", "-wal", "-shm", "-journal"] { unlink(sealedPath + suffix) }
    }
    report("wipe of \(pulled) revisions (\(replicaBytes / 1_000_000) MB) vs unlock", wipe, unlocks.sorted()[1], target: "< 1 s")
}
