import FieldSyncCore
import FieldSyncTestSupport
import Foundation
import Testing

/// Restored and copied replicas (issue 12): a plain file copy put back in place, or a replica file
/// cloned onto a second laptop, writes under dots the central node already holds with other
/// content. Every case ends with every replica identical, every value ever written in history, and
/// every store sound. Only the stock CLI is used, as a documenter would.
@Suite(.serialized) struct ForkTests {
    let w: CLIWorkspace
    let central: String
    init() throws {
        w = try CLIWorkspace("forks")
        central = w.dir.file("central.sqlite")
    }

    func copyFile(_ from: String, _ to: String) throws {
        if FileManager.default.fileExists(atPath: to) { try FileManager.default.removeItem(atPath: to) }
        try FileManager.default.copyItem(atPath: from, toPath: to)
    }

    /// Sets `narrative` to `value` on `name`'s replica.
    func write(_ name: String, _ id: String, _ value: String) async throws {
        try await w.ok(name, "edit", id, "--set", "narrative=\(value)")
    }

    /// Every replica equals every other one and the server, each value is in every replica's
    /// history of the record, and every store is sound.
    func expectConverged(_ names: [String], record id: String, values: [String], sourceLocation: SourceLocation = #_sourceLocation)
        async throws
    {
        let states = try await w.states(names)
        #expect(
            Set(states).count == 1, "replicas differ:\n\(zip(names, states).map { "\($0): \($1)" }.joined(separator: "\n"))",
            sourceLocation: sourceLocation)
        let server = try await w.binary.run(["list", "--all", "--json"], store: central)
        #expect(server.stdout == states.first, "the server differs: \(server.stdout)", sourceLocation: sourceLocation)
        for name in names {
            let history = try await w.ok(name, "show", id, "--history", "--json").stdout
            for value in values {
                #expect(history.contains(value), "\(name) lost \(value)", sourceLocation: sourceLocation)
            }
            let verified = try await w.verify(name)
            #expect(verified.sound, "\(name): \(verified.problems)", sourceLocation: sourceLocation)
        }
        let verified = try await w.verify(path: central)
        #expect(verified.sound, "server: \(verified.problems)", sourceLocation: sourceLocation)
    }

    /// Rima writes `before` values and syncs, a plain copy of her file is made, she writes `after`
    /// more and syncs, the laptop dies, the copy is put back and `restored` values are written.
    @Test(arguments: [
        (before: 2, after: 3, restored: 1),  // then writes below the server's counter
        (before: 2, after: 2, restored: 2),  // at an equal counter
        (before: 1, after: 1, restored: 3),  // past the server's counter
    ])
    func aRestoredPlainCopyReMintsWhatItWroteAndLosesNothing(before: Int, after: Int, restored: Int) async throws {
        let server = try await ServerProcess.start(binary: w.binary, store: central)
        try await w.initReplica("rima", server: server.url, serverStore: central)
        try await w.initReplica("omar", server: server.url, serverStore: central)
        let id = try await w.add("rima", "--title", "Detentions at the checkpoint")
        var values: [String] = []
        for i in 0..<before {
            values.append("before-\(i)")
            try await write("rima", id, values.last!)
        }
        try await w.ok("rima", "sync")
        let copy = w.dir.file("rima-copy.fieldsync")
        try copyFile(w.store("rima"), copy)
        for i in 0..<after {
            values.append("after-\(i)")
            try await write("rima", id, values.last!)
        }
        try await w.ok("rima", "sync")
        let node = try await w.ok("rima", "status", "--json").json()["node"]?.stringValue

        try copyFile(copy, w.store("rima"))
        for i in 0..<restored {
            values.append("restored-\(i)")
            try await write("rima", id, values.last!)
        }
        let remint = try await w.ok("rima", "sync", "--json")
        let synced = try remint.json()
        // The command's own line on stderr, and none of the library's log records (notices).
        #expect(remint.stderr.contains("fieldsync: the server holds revisions of this replica's node"), "\(remint)")
        #expect(!remint.stderr.contains(" notice "), "\(remint)")
        #expect(synced["reminted"] == .int(Int64(restored)), "\(synced)")
        #expect(synced["retired_node"]?.stringValue == node, "\(synced)")
        #expect(synced["pushed"] == .int(Int64(restored)))
        #expect(synced["pulled"] == .int(Int64(after)), "the server's revisions of the old node come back")
        #expect(try await w.ok("rima", "status", "--json").json()["node"]?.stringValue != node)
        let again = try await w.ok("rima", "sync", "--json").json()
        #expect(again["pushed"] == 0 && again["pulled"] == 0 && again["reminted"] == 0, "\(again)")

        try await w.ok("omar", "sync")
        try await expectConverged(["rima", "omar"], record: id, values: values)
        // Both branches wrote the narrative: an ordinary conflict for an admin, nothing silently kept.
        let shown = try await w.show("rima", id)
        #expect(shown["conflicts"]?.arrayValue?.contains { $0["path"] == "narrative" } == true, "\(shown)")
        #expect(
            try await w.ok("rima", "status", "--json").json()["forked_revisions"] == .int(Int64(restored)), "the originals are kept aside")
        #expect(await server.stop() == 0)
    }

    @Test func aClonedReplicaOnTwoLaptopsKeepsBothWrites() async throws {
        let server = try await ServerProcess.start(binary: w.binary, store: central)
        try await w.initReplica("rima", server: server.url, serverStore: central)
        let id = try await w.add("rima", "--title", "Looting of the market")
        try await w.ok("rima", "sync")
        try copyFile(w.store("rima"), w.store("clone"))
        try await write("rima", id, "from the first laptop")
        _ = try await w.add("rima", "--title", "First laptop's second incident")
        try await write("clone", id, "from the second laptop")
        _ = try await w.add("clone", "--title", "Second laptop's second incident")

        let first = try await w.ok("rima", "sync", "--json").json()
        #expect(first["reminted"] == 0 && first["pushed"] == 2)
        let second = try await w.ok("clone", "sync", "--json").json()
        #expect(second["reminted"] == 2 && second["pushed"] == 2 && second["pulled"] == 2, "\(second)")
        try await w.ok("rima", "sync")
        try await expectConverged(["rima", "clone"], record: id, values: ["from the first laptop", "from the second laptop"])
        let titles = try await w.titles("rima")
        #expect(Set(titles).isSuperset(of: ["First laptop's second incident", "Second laptop's second incident"]))
        #expect(await server.stop() == 0)
    }

    /// The restored copy hands a bundle to a colleague before it syncs. `peerSyncedFirst`: whether
    /// the colleague had already pulled what the dead laptop synced; `restoredSyncsFirst`: who
    /// syncs first afterwards.
    @Test(arguments: [(true, true), (true, false), (false, true), (false, false)])
    func aBundleFromARestoredCopyNeverBlocksAndEveryoneConverges(peerSyncedFirst: Bool, restoredSyncsFirst: Bool) async throws {
        let server = try await ServerProcess.start(binary: w.binary, store: central)
        try await w.initReplica("rima", server: server.url, serverStore: central)
        try await w.initReplica("omar", server: server.url, serverStore: central)
        let id = try await w.add("rima", "--title", "Destruction of the school")
        try await w.ok("rima", "sync")
        try await w.ok("omar", "sync")
        let copy = w.dir.file("rima-copy.fieldsync")
        try copyFile(w.store("rima"), copy)
        try await write("rima", id, "b1")
        try await write("rima", id, "b2")
        try await w.ok("rima", "sync")
        if peerSyncedFirst { try await w.ok("omar", "sync") }

        try copyFile(copy, w.store("rima"))
        try await write("rima", id, "b1-after-restore")
        let imported = try await w.exchange("rima", "omar")
        #expect(imported.status == 0)
        try await write("omar", id, "omar's note")

        let order = restoredSyncsFirst ? ["rima", "omar", "rima", "omar"] : ["omar", "rima", "omar", "rima"]
        var replacedOnOmar: Int64 = 0
        for name in order {
            let result = try await w.run(name, ["sync", "--json"])
            #expect(result.status == 0, "\(name): \(result)")
            if name == "omar" { replacedOnOmar += try result.json()["replaced"]?.intValue ?? -100 }
        }
        // Omar replaces the copy's revision by the central node's only when he took it in as his own.
        #expect((replacedOnOmar > 0) == !peerSyncedFirst, "\(replacedOnOmar)")
        try await expectConverged(["rima", "omar"], record: id, values: ["b1", "b2", "b1-after-restore", "omar's note"])
        #expect(await server.stop() == 0)
    }

    @Test func anUnenrolledReplicaReMintsWhenABundleShowsItsFork() async throws {
        try await w.initReplica("rima")
        let id = try await w.add("rima", "--title", "Arrests at the bakery")
        try copyFile(w.store("rima"), w.store("clone"))
        try await write("rima", id, "first laptop")
        try await write("clone", id, "second laptop")
        let imported = try await w.exchange("clone", "rima")
        #expect(imported.stdout.contains("re-minted 1 revision"), "\(imported)")
        let back = try await w.exchange("rima", "clone")
        #expect(back.stdout.hasPrefix("1 new revision"), "\(back)")
        let states = try await w.states(["rima", "clone"])
        #expect(states[0] == states[1], "both copies end the same")
        let history = try await w.ok("rima", "show", id, "--history", "--json").stdout
        #expect(history.contains("first laptop") && history.contains("second laptop"))
        #expect(try await w.verify("rima").sound)
        #expect(try await w.verify("clone").sound)
    }
}
