import FieldSyncCore
import FieldSyncTestSupport
import Foundation
import Testing

/// `fieldsync serve` as a real process: it listens, answers, and shuts down cleanly on SIGTERM/SIGINT.
@Suite struct ServeCommandTests {
    let w: CLIWorkspace
    init() throws { w = try CLIWorkspace("serve") }

    @Test(arguments: [SIGTERM, SIGINT])
    func servesSyncsAndStopsCleanlyOnSignal(signal: Int32) async throws {
        let server = try await ServerProcess.start(binary: w.binary, store: w.dir.file("central.sqlite"))
        try await w.initReplica("rima", server: server.url, serverStore: w.dir.file("central.sqlite"))
        for i in 0..<5 { _ = try await w.add("rima", "--title", "Incident \(i)") }
        let report = try await w.ok("rima", "sync", "--json").json()
        #expect(report["pushed"] == 5)
        let status = await server.stop(signal: signal)
        #expect(status == 0)
        #expect(server.log.contains("push"), "the server logs one line per sync request")
        // The store it leaves behind is sound and holds every revision.
        let check = try await w.binary.run(["status", "--json"], store: w.dir.file("central.sqlite"))
        #expect(try check.json()["revisions"] == 5)
        // With the server gone, sync is one clear line and exit code 1.
        let down = try await w.run("rima", "sync", "--retries", "1")
        #expect(down.status == 1)
        #expect(down.stderr.contains("cannot reach"))
        #expect(down.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1)
    }

    @Test func aBadPortIsAUsageError() async throws {
        let result = try await w.binary.run(["serve", "--port", "70000"], store: w.dir.file("x.sqlite"))
        #expect(result.status == 2)
    }

    @Test func manyClientsSyncAtOnceAndEveryRevisionIsStoredOnce() async throws {
        let server = try await ServerProcess.start(binary: w.binary, store: w.dir.file("central.sqlite"))
        let names = (0..<8).map { "doc\($0)" }
        for name in names {
            try await w.initReplica(name, server: server.url, serverStore: w.dir.file("central.sqlite"))
            for i in 0..<10 { _ = try await w.add(name, "--title", "\(name) incident \(i)") }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for name in names { group.addTask { _ = try await w.ok(name, "sync", "--batch-size", "3") } }
            try await group.waitForAll()
        }
        for name in names { _ = try await w.ok(name, "sync") }
        let states = try await w.states(names)
        #expect(Set(states).count == 1)
        #expect(try await w.ok(names[0], "status", "--json").json()["revisions"] == 80)
        _ = await server.stop(signal: SIGTERM)
        let central = try await w.binary.run(["status", "--json"], store: w.dir.file("central.sqlite"))
        #expect(try central.json()["revisions"] == 80)
    }
}
