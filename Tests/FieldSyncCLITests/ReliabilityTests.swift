import FieldSyncCore
import FieldSyncSeededRandom
import FieldSyncTestSupport
import Foundation
import Testing

// Reliability: processes killed mid-sync (client and server) and an unreliable network. Every
// scenario drives the built `fieldsync` binary as child processes, injects faults at random (the
// seed is printed so a failure can be replayed), and then checks that nothing was lost, nothing
// was stored twice, and every store passes `fieldsync verify` (which runs PRAGMA integrity_check,
// checks signatures, counters and the materialized state against a replay).
//
// See docs/RELIABILITY.md. The suite is serialized: the faults depend on timing, and the machine
// has two cores.

@Suite(.serialized) struct ReliabilityTests {
    let w: CLIWorkspace
    init() throws { w = try CLIWorkspace("reliability") }

    // MARK: 1. The client is killed mid-sync

    @Test func clientKilledMidSyncLosesNothing() async throws {
        var rng = Self.seededGenerator()
        let central = w.dir.file("central.sqlite")
        let batch = 25
        try await withChildren { children in
            let server = try await children.startServer(w.binary, store: central)
            try await w.initReplica("rima", server: server.url, serverStore: central)
            var expectedTitles = Set<String>()
            var total = 0
            func addIncidents(_ count: Int) async throws {
                let titles = (0..<count).map { "Incident \(total + $0) of rima" }
                try await w.ok("rima", "add", "--from", try w.incidentFile(titles))
                expectedTitles.formUnion(titles)
                total += count
            }
            try await addIncidents(1500)

            // Phase A: rima pushes 1500 revisions to a fresh server, 25 per batch, and is killed.
            let push = try await killSyncRepeatedly(
                "rima", children: children, rng: &rng, batch: batch,
                progress: { try await w.revisionCount(central) }, total: { total },
                refill: { try await addIncidents(300) })
            // A normal sync resumes the push: it sends exactly what the server still lacks.
            let onServer = try await w.revisionCount(central)
            let resumed = try await w.ok("rima", "sync", "--json").json()
            #expect(resumed["pushed"]?.intValue == Int64(total - onServer), "the resumed push sends only the rest")
            #expect(try await w.revisionCount(central) == total)

            // Phase B: omar, a fresh replica, pulls everything from the server, and is killed.
            try await w.initReplica("omar", server: server.url, serverStore: central)
            let pull = try await killSyncRepeatedly(
                "omar", children: children, rng: &rng, batch: batch,
                progress: { try await w.revisionCount(w.store("omar")) }, total: { try await w.revisionCount(central) },
                refill: {
                    try await addIncidents(300)
                    try await w.ok("rima", "sync")
                })
            print(
                "ReliabilityTests: client kills while pushing \(push.kills) (\(push.midTransfer) mid-transfer), while pulling \(pull.kills) (\(pull.midTransfer) mid-transfer), syncs that finished first \(push.completed + pull.completed); server counts while pushing \(push.counts), omar's counts while pulling \(pull.counts)"
            )
            #expect(push.kills + pull.kills >= 8)
            #expect(push.kills >= 4 && pull.kills >= 4)
            #expect(push.midTransfer >= 1, "at least one kill landed after some batches were pushed and before the end")
            #expect(pull.midTransfer >= 1, "at least one kill landed after some batches were pulled and before the end")

            // A normal sync afterwards completes, and everything converges.
            try await w.ok("rima", "sync")
            try await w.ok("omar", "sync")
            try await w.ok("rima", "sync")
            _ = await server.stop(signal: SIGTERM)
            try await w.expectConverged(["rima", "omar"], central: central, revisions: total)
            let titles = try await w.titles("omar")
            #expect(titles.count == total, "no record twice")
            #expect(Set(titles) == expectedTitles, "no record lost")
        }
        w.dir.remove()
    }

    struct KillStats {
        var kills = 0
        var midTransfer = 0
        var completed = 0
        /// The receiving side's revision count after each attempt (for the log).
        var counts: [Int] = []
    }

    /// Starts `fieldsync sync --batch-size N` on `replica` and SIGKILLs it after a random delay (20 ms to
    /// 1 s, log-uniform), again and again, until at least 5 kills happened of which 2 landed
    /// mid-transfer, or the bounds are hit. After each kill the replica must verify sound and the
    /// side receiving batches (`progress`) must hold whole batches only.
    func killSyncRepeatedly(
        _ replica: String, children: Children, rng: inout SplitMix64, batch: Int,
        progress: () async throws -> Int, total: () async throws -> Int, refill: () async throws -> Void
    ) async throws -> KillStats {
        var stats = KillStats()
        // A budget for a loaded machine: the encrypted-replica suites (scrypt in a debug build) run
        // beside this one, and each round verifies the replica.
        let deadline = ContinuousClock.now + .seconds(240)
        var previous = try await progress()
        // On a loaded machine a sync may not reach its first batch within a second: each kill that
        // found no progress doubles the longest delay, up to 8 s.
        var ceiling = 1000.0
        for _ in 0..<30 {
            if stats.kills >= 5 && stats.midTransfer >= 2 { break }
            if ContinuousClock.now > deadline { break }
            let delay = Self.logUniformMilliseconds(20, ceiling, &rng)
            let child = try children.spawn(
                w.binary.url, ["sync", "--batch-size", "\(batch)", "--store", w.store(replica)], label: "sync-\(replica)", in: w.dir)
            try await Task.sleep(for: .milliseconds(delay))
            let killed = child.signalIfRunning(SIGKILL)
            let status = try await child.wait(timeout: .seconds(60))
            if !killed { #expect(status == 0, "an uninterrupted sync succeeds: \(child.stderr)") }

            let verify = try await w.verify(replica)
            #expect(verify.sound, "\(replica) after a kill at \(delay) ms: \(verify.problems)")
            let now = try await progress()
            let all = try await total()
            #expect(now >= previous && now <= all)
            #expect(now % batch == 0 || now == all, "whole batches only: \(now) revisions after a kill at \(delay) ms")
            if ProcessInfo.processInfo.environment["FIELDSYNC_RELIABILITY_TRACE"] != nil {
                print("  \(replica): delay \(delay) ms, killed \(killed), status \(status), \(now) of \(all); \(child.stderr)")
            }
            if !killed && status == 0 {
                #expect(now == all, "a sync that exits 0 leaves nothing to transfer: \(now) of \(all) after it; stdout \(child.stdout)")
            }
            if killed {
                stats.kills += 1
                if now > previous && now < all { stats.midTransfer += 1 }
                if now == previous { ceiling = min(ceiling * 2, 8000) }
            } else {
                stats.completed += 1
            }
            stats.counts.append(now)
            previous = now
            if now == all && (stats.kills < 5 || stats.midTransfer < 2) {
                // Everything went through before enough crashes: give the next syncs more to do.
                try await refill()
                previous = try await progress()
            }
        }
        return stats
    }

    // MARK: 2. The server is killed mid-push

    @Test func serverKilledMidPushStoresWholeBatchesOnly() async throws {
        var rng = Self.seededGenerator()
        let central = w.dir.file("central.sqlite")
        let batch = 500
        let total = 2000
        try await withChildren { children in
            var server = try await children.startServer(w.binary, store: central)
            try await w.initReplica("rima", server: server.url, serverStore: central)
            try await w.ok("rima", "add", "--from", try w.incidentFile((0..<total).map { "Incident \($0) of rima" }))

            var midPushKills = 0
            var serverKills = 0
            var stored = 0
            var counts: [Int] = []
            for _ in 0..<5 {
                if stored == total && midPushKills >= 1 { break }
                let client = try children.spawn(
                    w.binary.url,
                    ["sync", "--batch-size", "\(batch)", "--retries", "0", "--server", server.url, "--store", w.store("rima")],
                    label: "sync-rima", in: w.dir)
                let delay = Int.random(in: 150...1200, using: &rng)
                try await Task.sleep(for: .milliseconds(delay))
                let clientWasRunning = client.isRunning
                let killStatus = await server.stop(signal: SIGKILL)
                #expect(killStatus == SIGKILL, "the server died of SIGKILL")
                serverKills += 1
                let status = try await client.wait(timeout: .seconds(60))
                if status != 0 {
                    #expect(status == 1, "a failed sync exits 1: \(client.stderr)")
                    #expect(client.stderr.hasPrefix("fieldsync: ") && client.stderrLines.count == 1, "one clear line: \(client.stderr)")
                }

                // Offline, before restarting: the store is sound and holds whole batches only.
                let verify = try await w.verify(path: central)
                #expect(verify.sound, "server store after SIGKILL at \(delay) ms: \(verify.problems)")
                #expect(verify.revisions % batch == 0 || verify.revisions == total, "all-or-nothing batches: \(verify.revisions)")
                #expect(verify.revisions >= stored && verify.revisions <= total)
                if clientWasRunning && verify.revisions < total { midPushKills += 1 }
                stored = verify.revisions
                counts.append(stored)

                server = try await children.startServer(w.binary, store: central)
            }
            print(
                "ReliabilityTests: server SIGKILLs \(serverKills), \(midPushKills) while the client was still pushing; server counts after each kill \(counts)"
            )
            #expect(midPushKills >= 1)

            // Against the restarted server (a new port), the next sync completes and pushes the rest.
            let report = try await w.ok("rima", "sync", "--server", server.url, "--json").json()
            #expect(report["pushed"]?.intValue == Int64(total - stored))
            try await w.initReplica("omar", server: server.url, serverStore: central)
            let pulled = try await w.ok("omar", "sync", "--json").json()
            #expect(pulled["pulled"]?.intValue == Int64(total))
            _ = await server.stop(signal: SIGTERM)
            try await w.expectConverged(["rima", "omar"], central: central, revisions: total)
        }
        w.dir.remove()
    }

    // MARK: 3. A flaky link

    @Test func syncThroughAFlakyLinkConverges() async throws {
        let seed = Self.seed()
        let central = w.dir.file("central.sqlite")
        let perReplica = 120
        try await withChildren { children in
            let server = try await children.startServer(w.binary, store: central)
            let names = ["rima", "omar"]
            for name in names {
                try await w.initReplica(name, server: server.url, serverStore: central)
                try await w.ok(name, "add", "--from", try w.incidentFile((0..<perReplica).map { "Incident \($0) of \(name)" }))
            }
            let serverPort = try #require(URL(string: server.url)?.port)
            let proxy = try await children.startProxy(
                targetPort: serverPort, seed: seed % 1_000_000_007, drop: 0.3, truncate: 0.15, delay: 0.2, in: w.dir)
            let proxyURL = "http://127.0.0.1:\(proxy.port)"

            var succeeded = 0
            var failed = 0
            var failureLines = Set<String>()
            for round in 0..<8 {
                let name = names[round % names.count]
                let result = try await w.binary.run(
                    ["sync", "--server", proxyURL, "--retries", "2", "--batch-size", "15"], store: w.store(name))
                if result.status == 0 {
                    succeeded += 1
                } else {
                    failed += 1
                    #expect(result.status == 1, "a failed sync exits 1: \(result)")
                    let lines = result.stderr.split(separator: "\n", omittingEmptySubsequences: true)
                    #expect(lines.count == 1 && lines[0].hasPrefix("fieldsync: "), "one clear line on stderr: \(result.stderr)")
                    failureLines.insert(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
                }
                let verify = try await w.verify(name)
                #expect(verify.sound, "\(name) after a sync through the flaky link: \(verify.problems)")
            }
            let faults = proxy.faults
            print(
                "ReliabilityTests: flaky link: \(succeeded) syncs succeeded, \(failed) failed, \(faults) faults injected; failures said: \(failureLines.sorted())"
            )
            #expect(faults >= 2, "the proxy injected faults")

            // Directly to the server, sync always completes and everything converges.
            for name in names + names { try await w.ok(name, "sync") }
            _ = await server.stop(signal: SIGTERM)
            try await w.expectConverged(names, central: central, revisions: perReplica * names.count)
        }
        w.dir.remove()
    }

    // MARK: Helpers

    /// FIELDSYNC_RELIABILITY_SEED, or a random seed; printed with the test's name so a failing run
    /// can be replayed.
    static func seed(_ test: String = #function) -> UInt64 {
        let seed: UInt64
        if let text = ProcessInfo.processInfo.environment["FIELDSYNC_RELIABILITY_SEED"], let given = UInt64(text) {
            seed = given
        } else {
            seed = UInt64.random(in: 1..<UInt64(Int64.max))
        }
        print("ReliabilityTests.\(test.prefix { $0 != "(" }): seed \(seed)")
        return seed
    }

    static func seededGenerator(_ test: String = #function) -> SplitMix64 { SplitMix64(seed: seed(test)) }

    static func logUniformMilliseconds(_ low: Double, _ high: Double, _ rng: inout SplitMix64) -> Int {
        Int(exp(Double.random(in: log(low)...log(high), using: &rng)).rounded())
    }
}

extension CLIWorkspace {
    /// A JSON file of small incidents with the given titles, for `add --from`.
    func incidentFile(_ titles: [String]) throws -> String {
        let path = dir.file("incidents-\(UUID().uuidString.prefix(8)).json")
        let items = titles.map { JSONValue.object(["title": .string($0), "occurred": .object(["start": .string("2025-03-07~")])]) }
        try JSONValue.array(items).canonicalText.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    struct Verification {
        var sound: Bool
        var revisions: Int
        var records: Int
        var problems: [String]
    }

    func verify(_ name: String) async throws -> Verification { try await verify(path: store(name)) }

    /// `fieldsync verify --json` on any store; exit 0 must mean sound.
    func verify(path: String) async throws -> Verification {
        let result = try await binary.run(["verify", "--json"], store: path)
        let json = try result.json()
        let sound = json["sound"]?.boolValue == true
        #expect(sound == (result.status == 0), "verify's exit code matches its report: \(result)")
        return Verification(
            sound: sound, revisions: Int(json["revisions"]?.intValue ?? -1), records: Int(json["records"]?.intValue ?? -1),
            problems: (json["problems"]?.arrayValue ?? []).compactMap(\.stringValue))
    }

    /// The revision count of a store, from `status --json` (cheap; readable while a server runs).
    func revisionCount(_ path: String) async throws -> Int {
        let result = try await binary.run(["status", "--json"], store: path)
        #expect(result.status == 0, "\(result)")
        return Int(try result.json()["revisions"]?.intValue ?? -1)
    }

    /// Every title in `list --all --json`, one per record.
    func titles(_ name: String) async throws -> [String] {
        let list = try await ok(name, "list", "--all", "--json").json()
        return (list.arrayValue ?? []).compactMap { $0["fields"]?["title"]?.stringValue }
    }

    /// Every replica and the central store are sound, hold exactly `revisions` revisions (one record
    /// each) and list the same records.
    func expectConverged(_ names: [String], central: String, revisions: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws
    {
        var lists: [String] = []
        for path in names.map(store) + [central] {
            let verify = try await verify(path: path)
            #expect(verify.sound, "\(path): \(verify.problems)", sourceLocation: sourceLocation)
            #expect(
                verify.revisions == revisions, "\(path): \(verify.revisions) revisions, expected \(revisions)",
                sourceLocation: sourceLocation)
            #expect(verify.records == revisions, "\(path): one record per revision", sourceLocation: sourceLocation)
            let list = try await binary.run(["list", "--all", "--json"], store: path)
            #expect(list.status == 0, "\(list)", sourceLocation: sourceLocation)
            lists.append(list.stdout)
        }
        #expect(Set(lists).count == 1, "every store lists the same records", sourceLocation: sourceLocation)
    }
}

// MARK: Child processes that never outlive a test

/// A child process with its output in files. ``Children`` kills whatever is still running.
final class ChildProcess: @unchecked Sendable {
    let process: Process
    let stdoutPath: String
    let stderrPath: String
    /// Kept open so that a child watching its stdin (the proxy) exits if the test process dies.
    let stdinPipe = Pipe()

    init(executable: URL, arguments: [String], stdoutPath: String, stderrPath: String) throws {
        FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process = Process()
        process.executableURL = executable
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["FIELDSYNC_STORE"] = nil
        process.environment = environment
        process.standardInput = stdinPipe
        process.standardOutput = FileHandle(forWritingAtPath: stdoutPath)
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        self.stdoutPath = stdoutPath
        self.stderrPath = stderrPath
        try process.run()
    }

    var isRunning: Bool { process.isRunning }
    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
    var stderrLines: [Substring] { stderr.split(separator: "\n", omittingEmptySubsequences: true) }

    /// Sends `signal` if the process has not exited yet; returns whether it was sent.
    @discardableResult
    func signalIfRunning(_ signal: Int32) -> Bool {
        guard process.isRunning else { return false }
        return kill(process.processIdentifier, signal) == 0
    }

    /// Waits (polling, without blocking a cooperative thread) for the exit status, at most `timeout`;
    /// past it the process is killed and the wait fails.
    func wait(timeout: Duration) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > deadline {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                throw ChildTimedOut(arguments: process.arguments ?? [], stderr: stderr)
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Kills the process if it still runs and reaps it (synchronous, for cleanup).
    func killAndReap() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        try? stdinPipe.fileHandleForWriting.close()
    }
}

struct ChildTimedOut: Error, CustomStringConvertible {
    var arguments: [String]
    var stderr: String
    var description: String { "child \(arguments) did not exit in time; stderr: \(stderr)" }
}

/// `fieldsync serve` as a child process, stopped at most once.
final class ManagedServer: @unchecked Sendable {
    let process: ServerProcess
    let lock = NSLock()
    var stopped = false  // guarded by lock
    var url: String { process.url }

    init(_ process: ServerProcess) { self.process = process }

    /// Sends `signal` and waits for the exit; returns its status (-1 when it was already stopped).
    func stop(signal: Int32) async -> Int32 {
        let first = lock.withLock { () -> Bool in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return -1 }
        return await process.stop(signal: signal)
    }
}

/// The flaky TCP proxy (Scripts/flaky_proxy.py) as a child process.
struct FlakyProxy {
    let child: ChildProcess
    let port: Int
    /// How many faults the proxy reported on stderr so far.
    var faults: Int { child.stderrLines.filter { $0.contains("drop") || $0.contains("truncated") }.count }
}

/// Every child process a test starts; ``withChildren(_:)`` kills those still running in all paths.
final class Children: @unchecked Sendable {
    let lock = NSLock()
    var processes: [ChildProcess] = []  // guarded by lock
    var servers: [ManagedServer] = []  // guarded by lock
    var counter = 0  // guarded by lock

    func spawn(_ executable: URL, _ arguments: [String], label: String, in dir: TemporaryDirectory) throws -> ChildProcess {
        let n = lock.withLock {
            counter += 1
            return counter
        }
        let child = try ChildProcess(
            executable: executable, arguments: arguments, stdoutPath: dir.file("\(label)-\(n).out"),
            stderrPath: dir.file("\(label)-\(n).err"))
        lock.withLock { processes.append(child) }
        return child
    }

    func startServer(_ binary: FieldSyncBinary, store: String) async throws -> ManagedServer {
        let server = ManagedServer(try await ServerProcess.start(binary: binary, store: store))
        lock.withLock { servers.append(server) }
        return server
    }

    static let proxyScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("Scripts/flaky_proxy.py").path

    func startProxy(targetPort: Int, seed: UInt64, drop: Double, truncate: Double, delay: Double, in dir: TemporaryDirectory) async throws
        -> FlakyProxy
    {
        let child = try spawn(
            URL(fileURLWithPath: "/usr/bin/env"),
            [
                "python3", Self.proxyScript, "0", "127.0.0.1:\(targetPort)", "\(seed)", "\(drop)", "\(truncate)", "\(delay)", "--lifetime",
                "300",
            ],
            label: "proxy", in: dir)
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if let line = child.stdout.split(separator: "\n").first, child.stdout.contains("\n"), let port = Int(line) {
                return FlakyProxy(child: child, port: port)
            }
            if !child.isRunning { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ChildTimedOut(arguments: ["flaky_proxy.py"], stderr: child.stderr)
    }

    func cleanUp() async {
        let (processes, servers) = lock.withLock { (self.processes, self.servers) }
        for process in processes { process.killAndReap() }
        for server in servers { _ = await server.stop(signal: SIGKILL) }
    }
}

/// Runs `body` with a registry of child processes and kills every one of them afterwards, whether
/// `body` returns or throws.
func withChildren<T>(_ body: (Children) async throws -> T) async throws -> T {
    let children = Children()
    do {
        let result = try await body(children)
        await children.cleanUp()
        return result
    } catch {
        await children.cleanUp()
        throw error
    }
}
