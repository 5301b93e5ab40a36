import FieldSyncCore
import FieldSyncTestSupport
import Foundation
import Testing

/// Conflict review through the CLI: three replicas and a live server on 127.0.0.1.
@Suite struct ConflictReviewTests {
    let w: CLIWorkspace
    init() throws { w = try CLIWorkspace("review") }

    func sync(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) async throws -> JSONValue {
        try await w.ok(name, "sync", "--json", sourceLocation: sourceLocation).json()
    }

    /// Admin and two documenters; one record synced everywhere, then edited concurrently on `casualties.killed`.
    func setUp(_ server: CLIServer) async throws -> String {
        try await w.initReplica("admin", server: server.url, serverStore: server.storePath, role: "admin")
        for name in ["rima", "omar"] { try await w.initReplica(name, server: server.url, serverStore: server.storePath) }
        let id = try await w.add("rima", "--title", "Killings in Al-Snobar", "--set", "casualties.killed=10")
        for name in ["rima", "omar", "admin"] { _ = try await sync(name) }
        // A snapshot from before the conflict, for a late documenter.
        try await w.ok("admin", "bundle", "export", "--out", w.dir.file("early.bundle"))
        try await w.ok("rima", "edit", id, "--set", "casualties.killed=12")
        try await w.ok("omar", "edit", id, "--set", "casualties.killed=15")
        _ = try await sync("rima")
        #expect(try await sync("omar")["new_conflicts"] == 1)
        _ = try await sync("admin")
        return id
    }

    /// Candidates carry stable ids (their dots): `--pick PATH=ID` names one whatever the numbering,
    /// and `resolve` says what it chose and what it supersedes.
    @Test func candidatesHaveStableIdsAndResolveNamesWhatItSupersedes() async throws {
        let server = try await w.startServer()
        let id = try await setUp(server)
        let listing = try await w.ok("admin", "conflicts", "--json").json()
        let candidates = try #require(listing[0]?["conflicts"]?[0]?["candidates"]?.arrayValue)
        let ids = candidates.compactMap { $0["id"]?.stringValue }
        #expect(ids.count == 2 && ids.allSatisfy { Dot($0) != nil })
        let omars = try #require(candidates.first { $0["author"] == "omar" })
        let omarsID = try #require(omars["id"]?.stringValue)
        #expect(omarsID == "\(omars["node"]?.stringValue ?? ""):\(omars["counter"]?.intValue ?? 0)")
        #expect(try await w.ok("admin", "conflicts").stdout.contains(omarsID), "the text shows the ids too")
        let shown = try await w.show("admin", id)
        #expect(shown["conflicts"]?[0]?["candidates"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == ids)

        let unknown = try await w.run("admin", ["resolve", id, "--pick", "casualties.killed=0123456789abcdef:9", "--note", "x"])
        #expect(unknown.status == 1 && unknown.stderr.contains("not a current candidate"), "\(unknown)")
        let resolved = try await w.ok("admin", "resolve", id, "--pick", "casualties.killed=\(omarsID)", "--note", "Hospital list names 15")
            .stdout
        #expect(resolved.contains("casualties.killed = 15"), "\(resolved)")
        for candidate in ids { #expect(resolved.contains("supersedes \(candidate)"), "\(resolved)") }
        #expect(try await w.show("admin", id)["fields"]?["casualties"]?["killed"] == 15)
        await server.stop()
    }

    @Test func adminSeesBothSidesWithTheBaseAndResolvesEverywhere() async throws {
        let server = try await w.startServer()
        let id = try await setUp(server)
        let listing = try await w.ok("admin", "conflicts", "--json").json()
        let conflict = try #require(listing[0]?["conflicts"]?[0])
        #expect(listing[0]?["id"]?.stringValue == id)
        #expect(conflict["path"] == "casualties.killed")
        #expect(conflict["base"]?["value"] == 10)
        #expect(conflict["base"]?["author"] == "rima")
        let candidates = try #require(conflict["candidates"]?.arrayValue)
        #expect(Set(candidates.compactMap { $0["author"]?.stringValue }) == ["rima", "omar"])
        let omarsNumber = try #require(candidates.firstIndex { $0["author"] == "omar" }) + 1
        #expect(try await w.ok("admin", "conflicts").stdout.contains("base: 10"))
        #expect(try await w.ok("admin", "status", "--json").json()["conflicts"] == 1)

        try await w.ok(
            "admin", "resolve", String(id.prefix(8)), "--pick", "casualties.killed=\(omarsNumber)", "--note", "Hospital list names 15")
        #expect(try await w.show("admin", id)["conflicts"] == [])
        for name in ["admin", "rima", "omar"] { _ = try await sync(name) }
        for name in ["admin", "rima", "omar"] {
            let record = try await w.show(name, id)
            #expect(record["conflicts"] == [], "\(name)")
            #expect(record["fields"]?["casualties"]?["killed"] == 15, "\(name)")
        }
        #expect(Set(try await w.states(["admin", "rima", "omar"])).count == 1)
        // Every claim stays in history, with the resolution and its note.
        let history = try await #require(try await w.ok("rima", "show", id, "--history", "--json").json()["history"]?.arrayValue)
        let written = history.flatMap { $0["operations"]?.arrayValue ?? [] }
            .filter { $0["path"] == "casualties.killed" }.compactMap { $0["value"]?.intValue }
        #expect(Set(written).isSuperset(of: [10, 12, 15]))
        let resolution = try #require(history.last)
        #expect(resolution["note"] == "Hospital list names 15")
        #expect(resolution["author"] == "admin")
        #expect(resolution["conflicts_resolved"] == ["casualties.killed"])
        #expect(history.contains { $0["conflicts_created"] == ["casualties.killed"] })
        await server.stop()
    }

    @Test func aResolutionOnAnOutOfDateViewSettlesOnlyWhatTheAdminSaw() async throws {
        let server = try await w.startServer()
        let id = try await setUp(server)
        try await w.initReplica("lina", server: server.url, serverStore: server.storePath)
        // Lina synced before the conflict arose, then wrote a third figure concurrently, and syncs late.
        try await w.ok("lina", "bundle", "import", w.dir.file("early.bundle"))
        try await w.ok("lina", "edit", id, "--set", "casualties.killed=20")
        try await w.ok("admin", "resolve", id, "--set", "casualties.killed=14", "--note", "Average of two counts pending a visit")
        _ = try await sync("admin")
        _ = try await sync("lina")
        _ = try await sync("admin")
        let record = try await w.show("admin", id)
        let conflicts = try #require(record["conflicts"]?.arrayValue)
        #expect(conflicts.count == 1)
        let values = Set(conflicts[0]["candidates"]?.arrayValue?.compactMap { $0["value"]?.intValue } ?? [])
        #expect(values == [14, 20])
        await server.stop()
    }

    @Test func twoAdminsResolvingDifferentlyMakeANewConflict() async throws {
        let server = try await w.startServer()
        let id = try await setUp(server)
        try await w.initReplica("admin2", server: server.url, serverStore: server.storePath, role: "admin")
        _ = try await sync("admin2")
        try await w.ok("admin", "resolve", id, "--set", "casualties.killed=12", "--note", "First admin's reading")
        try await w.ok("admin2", "resolve", id, "--set", "casualties.killed=15", "--note", "Second admin's reading")
        _ = try await sync("admin")
        _ = try await sync("admin2")
        _ = try await sync("admin")
        let conflicts = try await #require(try await w.show("admin", id)["conflicts"]?.arrayValue)
        #expect(conflicts.count == 1)
        let authors = Set(conflicts[0]["candidates"]?.arrayValue?.compactMap { $0["author"]?.stringValue } ?? [])
        #expect(authors == ["admin", "admin2"])
        await server.stop()
    }

    @Test func deleteAgainstEditIsKeptOrDeletedByChoice() async throws {
        for name in ["a", "b"] { try await w.initReplica(name) }
        let id = try await w.add("a", "--title", "Contested record")
        try await w.exchange("a", "b")
        try await w.ok("a", "delete", id)
        try await w.ok("b", "edit", id, "--set", "narrative=New testimony")
        try await w.exchange("a", "b")
        let record = try await w.show("b", id)
        #expect(record["deleted"] == false)
        #expect(record["fields"]?["narrative"] == "New testimony")
        #expect(record["conflicts"]?[0]?["path"] == "deleted")
        let missingChoice = try await w.run("b", "resolve", id, "--note", "x")
        #expect(missingChoice.status == 1)
        try await w.ok("b", "resolve", id, "--keep", "--note", "The testimony is new evidence")
        #expect(try await w.show("b", id)["conflicts"] == [])
        #expect(try await w.show("b", id)["deleted"] == false)
    }

    @Test func badResolutionsChangeNothing() async throws {
        for name in ["a", "b"] { try await w.initReplica(name) }
        let id = try await w.add("a", "--title", "Detentions", "--set", "casualties.missing=3")
        try await w.exchange("a", "b")
        try await w.ok("a", "edit", id, "--set", "casualties.missing=4")
        try await w.ok("b", "edit", id, "--set", "casualties.missing=5")
        try await w.exchange("a", "b")
        let before = try await w.state("b")
        let cases: [([String], String)] = [
            (["resolve", id, "--pick", "title=1", "--note", "n"], "not in conflict"),
            (["resolve", id, "--pick", "casualties.missing=3", "--note", "n"], "candidates 1 to 2"),
            (["resolve", "ffffffff", "--pick", "casualties.missing=1", "--note", "n"], "no record"),
            (["resolve", id, "--pick", "casualties.missing=1"], "--note"),
            (["resolve", id, "--set", "casualties.missing=-1", "--note", "n"], "casualties.missing"),
        ]
        for (arguments, message) in cases {
            let result = try await w.run("b", arguments)
            #expect(result.status == 1, "\(arguments)")
            #expect(result.stderr.contains(message), "\(result.stderr)")
            #expect(try await w.state("b") == before)
        }
    }

    /// On a terminal without --pick/--set, resolve asks path by path (run under `script`, which gives it a pty).
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/script")))
    func resolveAsksOnATerminal() async throws {
        for name in ["a", "b"] { try await w.initReplica(name) }
        let id = try await w.add("a", "--title", "Shelling of the bakery", "--set", "casualties.injured=1")
        try await w.exchange("a", "b")
        try await w.ok("a", "edit", id, "--set", "casualties.injured=2")
        try await w.ok("b", "edit", id, "--set", "casualties.injured=3")
        try await w.exchange("b", "a")
        // The workspace's agent socket folder: an encrypted replica is unlocked there.
        let command = "XDG_RUNTIME_DIR=\(w.environment["XDG_RUNTIME_DIR"] ?? "") \(w.binary.url.path) resolve \(id) --store \(w.store("a"))"
        let result: Int32 = try await DedicatedThread.run {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
            process.arguments = ["-qec", command, "/dev/null"]
            let input = Pipe()
            process.standardInput = input
            process.standardOutput = Pipe()
            try process.run()
            input.fileHandleForWriting.write(Data("2\nthe second count is from the hospital\n".utf8))
            try input.fileHandleForWriting.close()
            process.waitUntilExit()
            return process.terminationStatus
        }
        #expect(result == 0)
        let record = try await w.show("a", id)
        #expect(record["conflicts"] == [])
        let history = try #require(try await w.ok("a", "show", id, "--history", "--json").json()["history"]?.arrayValue)
        #expect(history.last?["note"] == "the second count is from the hospital")
    }
}

/// #14: an entry removed on one replica while another sets one of its empty fields is listed as a
/// conflict on the entry, shown with what is left, and `resolve --pick ENTRY=N` removes it whole.
@Suite struct EntryConflictCommandTests {
    let w: CLIWorkspace
    init() throws { w = try CLIWorkspace("entry") }

    @Test func aRemovedEntryEditedElsewhereIsAConflictTheAdminSettles() async throws {
        try await w.initReplica("rima")
        try await w.initReplica("omar")
        let id = try await w.add(
            "rima", "--title", "Executions near the dam", "--set", #"victims+={"pseudonym":"V-01","status":"killed"}"#)
        let entry = try #require(try await w.show("rima", id)["fields"]?["victims"]?.objectValue?.keys.first)
        try await w.exchange("rima", "omar")
        try await w.ok("rima", "edit", id, "--set", "victims-=\(entry)")
        try await w.ok("omar", "edit", id, "--set", "victims.\(entry).age_range=30-40")
        try await w.exchange("omar", "rima")
        let shown = try await w.show("rima", id)
        #expect(shown["conflicts"]?.arrayValue?.compactMap { $0["path"]?.stringValue } == ["victims.\(entry)"])
        #expect(shown["fields"]?["victims"]?[entry]?["age_range"] == "30-40")
        let listed = try await w.ok("rima", "conflicts").stdout
        #expect(listed.contains("entry removed against an edit"))
        #expect(listed.contains("removed") && listed.contains("kept (edited)"))
        // Rima is not enrolled: her resolve settles it. Removing takes what is left with it.
        let conflict = try #require(shown["conflicts"]?.arrayValue?.first)
        let removal = try #require(conflict["candidates"]?.arrayValue?.first { $0["value"] == .null }?["id"]?.stringValue)
        try await w.ok("rima", "resolve", id, "--pick", "victims.\(entry)=\(removal)", "--note", "Duplicate of V-02")
        let after = try await w.show("rima", id)
        #expect(after["conflicts"] == [])
        #expect(after["fields"]?["victims"] == nil)
        try await w.exchange("rima", "omar")
        #expect(try await w.state("omar") == (try await w.state("rima")))
    }
}
