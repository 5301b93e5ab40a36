import FieldSyncCore
import FieldSyncTestSupport
import Foundation
import Testing

/// `fieldsync backup`, restores from it, and the central node closing its store on every stop.
@Suite(.serialized) struct BackupTests {
    let w: CLIWorkspace
    init() throws { w = try CLIWorkspace("backup") }

    func mode(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    @Test func aBackupTakenDuringAPushIsConsistentAndRestoresTheCentralNode() async throws {
        let central = w.dir.file("central.sqlite")
        let copy = w.dir.file("central-backup.sqlite")
        let server = try await ServerProcess.start(binary: w.binary, store: central)
        try await w.initReplica("rima", server: server.url, serverStore: central)
        let titles = (0..<400).map { "Incident \($0)" }
        try await w.ok("rima", "add", "--from", try w.incidentFile(titles))

        // The push runs in batches of 10 while the backup is taken from the live store.
        async let sync = w.run("rima", ["sync", "--batch-size", "10"])
        try await Task.sleep(for: .milliseconds(300))
        let backup = try await w.binary.run(["backup", "--store", central, "--out", copy, "--json"])
        #expect(backup.status == 0, "\(backup)")
        let pushed = try await sync
        #expect(pushed.status == 0, "\(pushed)")
        #expect(await server.stop() == 0)

        #expect(try mode(copy) == 0o600)
        let verified = try await w.verify(path: copy)
        #expect(verified.sound, "\(verified.problems)")
        // One push batch is one transaction: the copy holds whole batches, and the copy's own
        // report says what it holds.
        #expect(verified.revisions % 10 == 0, "\(verified.revisions)")
        #expect(try backup.json()["revisions"]?.intValue == Int64(verified.revisions))
        #expect(try await w.revisionCount(central) == 400)

        // Restore: the admin puts the copy in place of the store and starts the node again. The
        // documenter's next sync sends whatever the copy lacks.
        try FileManager.default.removeItem(atPath: central)
        try FileManager.default.copyItem(atPath: copy, toPath: central)
        let restored = try await ServerProcess.start(binary: w.binary, store: central)
        let again = try await w.binary.run(["sync", "--json", "--server", restored.url], store: w.store("rima"))
        #expect(again.status == 0, "\(again)")
        #expect(try again.json()["pushed"]?.intValue == Int64(400 - verified.revisions))
        #expect(await restored.stop() == 0)
        #expect(try await w.revisionCount(central) == 400)
        #expect(try await w.verify(path: central).sound)
    }

    @Test func aRestoredReplicaBackupTakesANewNodeIdBeforeItsFirstWrite() async throws {
        let central = w.dir.file("central.sqlite")
        let server = try await ServerProcess.start(binary: w.binary, store: central)
        try await w.initReplica("rima", server: server.url, serverStore: central)
        let id = try await w.add("rima", "--title", "Looting of the pharmacy", "--set", "casualties.killed=1")
        try await w.ok("rima", "sync")
        let backup = w.dir.file("rima-backup.fieldsync")
        try await w.ok("rima", "backup", "--out", backup)
        let original = try await w.ok("rima", "status", "--json").json()["node"]?.stringValue
        // After the backup: a change that reaches the server, then the laptop dies.
        try await w.ok("rima", "edit", id, "--set", "casualties.killed=2")
        try await w.ok("rima", "sync")

        try FileManager.default.removeItem(atPath: w.store("rima"))
        try FileManager.default.copyItem(atPath: backup, toPath: w.store("rima"))
        #expect(try await w.ok("rima", "status", "--json").json()["node"]?.stringValue == original, "reading does not re-key")
        try await w.ok("rima", "edit", id, "--set", "casualties.killed=3", "--set", "narrative=Written after the restore.")
        let status = try await w.ok("rima", "status", "--json").json()
        #expect(status["node"]?.stringValue != original, "the first write after a restore is under a new node id")
        #expect(status["retired_nodes"]?.arrayValue?.compactMap(\.stringValue) == [original].compactMap { $0 })

        let synced = try await w.ok("rima", "sync", "--json").json()
        #expect(synced["pushed"] == 1)
        #expect(synced["pulled"] == 1, "the change made after the backup comes back")
        #expect(await server.stop() == 0)

        // Both values written after the backup survive: the one the dead laptop synced and the one
        // written after the restore, side by side as a conflict.
        let record = try await w.show("rima", id)
        let candidates = record["conflicts"]?.arrayValue?.first { $0["path"] == "casualties.killed" }?["candidates"]?.arrayValue ?? []
        #expect(Set(candidates.compactMap { $0["value"]?.intValue }) == [2, 3], "\(record)")
        #expect(try await w.verify(path: w.store("rima")).sound)
        #expect(try await w.verify(path: central).sound)
        #expect(try await w.revisionCount(central) == 3)
    }

    @Test func badBackupRequestsAreOneLineAndChangeNothing() async throws {
        try await w.initReplica("rima")
        _ = try await w.add("rima", "--title", "One")
        let existing = w.dir.file("existing.fieldsync")
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: existing))
        for (arguments, message) in [
            (["backup", "--out", existing], "already exists"),
            (["backup", "--out", w.dir.file("no/such/folder/copy.fieldsync")], "cannot create"),
        ] {
            let result = try await w.run("rima", arguments)
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.contains(message), "\(result)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(result)")
        }
        #expect(try String(contentsOfFile: existing, encoding: .utf8) == "keep me")
        let missing = try await w.binary.run(
            ["backup", "--out", w.dir.file("copy.fieldsync")], store: w.dir.file("nothing-here.fieldsync"))
        #expect(missing.status == 1 && missing.stderr.contains("no replica at"), "\(missing)")
        #expect(!FileManager.default.fileExists(atPath: w.dir.file("copy.fieldsync")))
        #expect(try await w.ok("rima", "status", "--json").json()["revisions"] == 1)
    }

    /// SIGTERM or SIGINT while syncs are running: every stop closes the store, so the main file
    /// holds everything and no write-ahead log is left beside it.
    @Test func everyStopUnderSyncLoadClosesTheStore() async throws {
        let central = w.dir.file("central.sqlite")
        let first = try await ServerProcess.start(binary: w.binary, store: central)
        try await w.initReplica("rima", server: first.url, serverStore: central)
        #expect(await first.stop() == 0)
        var exits: [Int32] = []
        for round in 0..<20 {
            let server = try await ServerProcess.start(binary: w.binary, store: central)
            try await w.ok("rima", "add", "--from", try w.incidentFile((0..<20).map { "Round \(round) incident \($0)" }))
            async let sync = w.run("rima", ["sync", "--batch-size", "5", "--retries", "0", "--server", server.url])
            try await Task.sleep(for: .milliseconds(UInt64(round % 5) * 15))
            exits.append(await server.stop(signal: round % 2 == 0 ? SIGTERM : SIGINT))
            _ = try await sync
            #expect(!FileManager.default.fileExists(atPath: central + "-wal"), "round \(round): a -wal file was left behind")
        }
        #expect(exits.allSatisfy { $0 == 0 }, "\(exits)")
        let last = try await ServerProcess.start(binary: w.binary, store: central)
        try await w.ok("rima", "sync", "--server", last.url)
        #expect(await last.stop() == 0)
        #expect(try await w.revisionCount(central) == 400)
        #expect(try await w.verify(path: central).sound)
    }
}
