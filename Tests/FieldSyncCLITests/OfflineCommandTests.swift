import FieldSyncCore
import FieldSyncTestSupport
import Foundation
import Testing

/// Every offline command's happy path and its bad input, through the built binary.
@Suite struct OfflineCommandTests {
    let w: CLIWorkspace
    init() throws { w = try CLIWorkspace("cli") }

    @Test func initPrintsTheNodeIDAndRefusesToOverwrite() async throws {
        let result = try await w.ok("rima", "init", "--name", "Rima", "--json", "--plaintext")
        let node = try result.json()["node"]?.stringValue
        #expect(node.flatMap(NodeID.init) != nil)
        let again = try await w.run("rima", "init", "--name", "Rima", "--plaintext")
        #expect(again.status == 1)
        #expect(again.stderr.contains("refusing to overwrite"))
        #expect(again.stderr.split(separator: "\n").count == 1)
        #expect(try await w.ok("rima", "status", "--json").json()["node"]?.stringValue == node)
    }

    @Test func storeIsAcceptedBeforeTheSubcommandAndFromTheEnvironment() async throws {
        let path = w.store("env")
        let before = try await w.binary.run(["--store", path, "init", "--name", "Lina", "--plaintext"])
        #expect(before.status == 0, "\(before)")
        let viaEnv = try await w.binary.run(["status", "--json"], environment: ["FIELDSYNC_STORE": path])
        #expect(try viaEnv.json()["name"] == "Lina")
    }

    @Test func anUnknownLogLevelIsRefusedBeforeTheCommandRuns() async throws {
        let path = w.store("logged")
        let bad = try await w.binary.run(
            ["--store", path, "init", "--name", "Lina", "--plaintext"], environment: ["FIELDSYNC_LOG_LEVEL": "loud"])
        #expect(bad.status == 1, "\(bad)")
        #expect(bad.stderr.contains("FIELDSYNC_LOG_LEVEL must be one of trace, debug, info"), "\(bad)")
        #expect(bad.stderr.split(separator: "\n").count == 1, "\(bad)")
        #expect(!FileManager.default.fileExists(atPath: path), "nothing was written")
        // Any case of a known level is taken.
        let good = try await w.binary.run(
            ["--store", path, "init", "--name", "Lina", "--plaintext"], environment: ["FIELDSYNC_LOG_LEVEL": "Warning"])
        #expect(good.status == 0, "\(good)")
    }

    @Test func addEditShowListAndStatus() async throws {
        try await w.initReplica("rima")
        let id = try await w.add(
            "rima", "--title", "Summary executions near the bakery", "--occurred", "2025-03-07~", "--place", "Al-Mukhtariya",
            "--governorate", "Latakia", "--set", "casualties.killed=12", "--set", "violations+=summary-execution",
            "--set", "location.country=SY", "--set", #"victims+={"pseudonym":"V-01","sex":"male","age_range":"30-40","status":"killed"}"#,
            "--set", "custom.team=north")
        #expect(RecordID(id) != nil)
        var record = try await w.show("rima", String(id.prefix(8)))
        #expect(record["id"]?.stringValue == id)
        #expect(record["deleted"] == false)
        #expect(record["fields"]?["casualties"]?["killed"] == 12)
        #expect(record["fields"]?["violations"] == ["summary-execution"])
        #expect(record["fields"]?["custom"]?["team"] == "north")
        #expect(record["conflicts"] == [])
        let victims = try #require(record["fields"]?["victims"]?.objectValue)
        #expect(victims.count == 1)
        let entry = try #require(victims.keys.first)

        try await w.ok(
            "rima", "edit", String(id.prefix(6)), "--set", "casualties.killed=14", "--set", "tags+=hospital-list",
            "--set", "victims.\(entry).status=killed", "--unset", "custom.team")
        record = try await w.show("rima", id)
        #expect(record["fields"]?["casualties"]?["killed"] == 14)
        #expect(record["fields"]?["tags"] == ["hospital-list"])
        #expect(record["fields"]?["custom"] == nil)
        #expect(record["version"]?.objectValue?.values.first == 2)

        try await w.ok("rima", "edit", id, "--set", "victims-=\(entry)", "--set", "tags-=hospital-list")
        record = try await w.show("rima", id)
        #expect(record["fields"]?["victims"] == nil)
        #expect(record["fields"]?["tags"] == nil)

        let list = try await w.ok("rima", "list", "--json").json()
        #expect(list.arrayValue?.count == 1)
        let status = try await w.ok("rima", "status", "--json").json()
        #expect(status["records"] == 1)
        #expect(status["revisions"] == 3)
        #expect(status["conflicts"] == 0)
        #expect(try await w.ok("rima", "list").stdout.contains("Summary executions near the bakery"))
    }

    @Test func historyShowsWhoWhenAndWhat() async throws {
        try await w.initReplica("rima")
        let id = try await w.add("rima", "--title", "Looting of shops")
        try await w.ok("rima", "edit", id, "--set", "narrative=Shops on the main road were emptied.")
        let history = try await #require(try await w.ok("rima", "show", id, "--history", "--json").json()["history"]?.arrayValue)
        #expect(history.count == 2)
        #expect(history[0]["author"] == "rima")
        #expect(history[1]["operations"]?[0]?["path"] == "narrative")
        let text = try await w.ok("rima", "show", id, "--history").stdout
        #expect(text.contains("set narrative = Shops on the main road were emptied."))
    }

    @Test func deleteKeepsTheRecordVisibleAsDeleted() async throws {
        try await w.initReplica("rima")
        let id = try await w.add("rima", "--title", "Duplicate entry")
        #expect(try await w.ok("rima", "delete", id).stdout.contains("deleted"))
        #expect(try await w.show("rima", id)["deleted"] == true)
        #expect(try await w.ok("rima", "list", "--json").json() == [])
        #expect(try await w.ok("rima", "list", "--all", "--json").json().arrayValue?.count == 1)
        #expect(try await w.run("rima", "delete", id).status == 1)
    }

    @Test func addFromAJSONFileIsAllOrNothing() async throws {
        try await w.initReplica("rima")
        let good = w.dir.file("good.json")
        try
            #"[{"title":"Burning of houses","location":{"place":"Baniyas","governorate":"Tartus"},"victims":[{"pseudonym":"A"},{"pseudonym":"B"}],"tags":["fire"]},{"title":"Arrests at the checkpoint","casualties":{"missing":3}}]"#
            .write(toFile: good, atomically: true, encoding: .utf8)
        let ids = try await w.ok("rima", "add", "--from", good).stdout.split(separator: "\n")
        #expect(ids.count == 2)
        let first = try await w.show("rima", String(ids[0]))
        #expect(first["fields"]?["victims"]?.objectValue?.count == 2)
        let bad = w.dir.file("bad.json")
        try #"[{"title":"Fine"},{"title":"Bad","casualties":{"killed":-1}}]"#.write(toFile: bad, atomically: true, encoding: .utf8)
        let result = try await w.run("rima", "add", "--from", bad)
        #expect(result.status == 1)
        #expect(result.stderr.contains("incident 2"))
        #expect(result.stderr.contains("casualties.killed"))
        #expect(try await w.ok("rima", "status", "--json").json()["records"] == 2)
        let stdin = try await w.ok("rima", "add", "--from", "-", stdin: #"{"title":"From stdin"}"#)
        #expect(RecordID(stdin.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) != nil)
    }

    @Test(arguments: [
        (["add", "--title", "x", "--occurred", "07/03/2025"], "occurred.start"),
        (["add", "--title", "x", "--set", "casualties.killed=-2"], "casualties.killed"),
        (["add", "--title", "x", "--set", "location.lat=123"], "location.lat"),
        (["add", "--title", "x", "--set", "location.country=Syria"], "location.country"),
        (["add", "--title", "x", "--set", "violations+=crime"], "violations"),
        (["add", "--title", "x", "--set", "weather=rain"], "weather"),
        (["add", "--title", "x", "--set", "status=final"], "status"),
        (["add", "--title", "   "], "title"),
        (["show", "0000"], "no record"),
        (["show", "zz"], "not a record id"),
    ])
    func badInputIsOneLineAndChangesNothing(arguments: [String], mentions: String) async throws {
        try await w.initReplica("rima")
        let before = try await w.state("rima")
        let result = try await w.binary.run(arguments, store: w.store("rima"))
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr.contains(mentions), "\(result.stderr)")
        #expect(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1)
        #expect(try await w.state("rima") == before)
    }

    @Test func usageErrorsExitWith2() async throws {
        try await w.initReplica("rima")
        #expect(try await w.run("rima", "frobnicate").status == 2)
        #expect(try await w.run("rima", "edit").status == 2)
        #expect(try await w.run("rima", "add").status == 2)
        #expect(try await w.binary.run(["status"], store: w.store("nobody")).status == 1)
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")))
    func aLockedStoreIsAClearErrorAndUnchanged() async throws {
        try await w.initReplica("rima")
        _ = try await w.add("rima", "--title", "Before the lock")
        let before = try await w.state("rima")
        // Another process holds an exclusive lock for longer than fieldsync waits (10 s).
        let locker = Process()
        locker.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        locker.arguments = [
            "-c",
            "import sqlite3,sys,time; c=sqlite3.connect(sys.argv[1], isolation_level=None); c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(14)",
            w.store("rima"),
        ]
        let out = Pipe()
        locker.standardOutput = out
        try locker.run()
        defer { if locker.isRunning { kill(locker.processIdentifier, SIGKILL) } }
        _ = out.fileHandleForReading.availableData  // waits for "locked"
        let result = try await w.run("rima", "add", "--title", "During the lock")
        kill(locker.processIdentifier, SIGKILL)
        locker.waitUntilExit()
        #expect(result.status == 1)
        #expect(result.stderr.contains("locked"))
        #expect(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1)
        #expect(try await w.state("rima") == before)
    }

    /// An unwritable store: made immutable with chattr, since tests run as root and root ignores file modes.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/chattr")))
    func anUnwritableStoreIsAClearErrorAndUnchanged() async throws {
        try await w.initReplica("rima")
        _ = try await w.add("rima", "--title", "Written before")
        let path = w.store("rima")
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        func chattr(_ flag: String) throws -> Int32 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/chattr")
            process.arguments = [flag, path]
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus
        }
        guard try chattr("+i") == 0 else { return }  // the file system has no immutable flag
        defer { _ = try? chattr("-i") }
        let result = try await w.run("rima", "add", "--title", "Refused")
        _ = try chattr("-i")
        #expect(result.status == 1)
        #expect(result.stderr.contains("cannot write"))
        #expect(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        let nowhere = try await w.binary.run(["init", "--name", "x", "--plaintext", "--store", "/proc/fieldsync-test.sqlite"])
        #expect(nowhere.status == 1)
        #expect(nowhere.stderr.contains("cannot create"))
    }

    @Test func aStoreThatIsNotAReplicaIsAClearError() async throws {
        let path = w.dir.file("photo.jpg")
        try Data(repeating: 0xAB, count: 4096).write(to: URL(fileURLWithPath: path))
        let result = try await w.binary.run(["status"], store: path)
        #expect(result.status == 1)
        #expect(result.stderr.contains("not a FieldSync replica"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(repeating: 0xAB, count: 4096))
    }
}

/// Store paths of every shape work, relative one-letter names included (a corelibs Foundation trap).
@Suite struct StorePathTests {
    @Test(arguments: ["a", "ab.db", "sub/dir/replica.fieldsync"])
    func relativeStorePathsWork(path: String) async throws {
        let w = try CLIWorkspace("paths")
        let binary = w.binary
        let result: CommandResult = try await DedicatedThread.run {
            let process = Process()
            process.executableURL = binary.url
            process.arguments = ["init", "--name", "x", "--plaintext", "--store", path]
            process.currentDirectoryURL = URL(fileURLWithPath: w.dir.path)
            let err = Pipe()
            process.standardError = err
            process.standardOutput = Pipe()
            try process.run()
            let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return CommandResult(status: process.terminationStatus, stdout: "", stderr: stderr)
        }
        #expect(result.status == 0, "\(result)")
        #expect(FileManager.default.fileExists(atPath: w.dir.file(path)))
    }
}
