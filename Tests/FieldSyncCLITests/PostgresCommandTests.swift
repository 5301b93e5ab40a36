import FieldSyncBlobs
import FieldSyncCore
import FieldSyncPostgres
import FieldSyncTestSupport
import Foundation
import Testing

/// The central node on PostgreSQL, black-box: `serve --database`, `server add-user --database`,
/// documenters syncing and attaching through it, `verify --database` and `backup --database`.
@Suite struct PostgresCommandTests {
    let w: CLIWorkspace
    init() throws { w = try CLIWorkspace("postgres") }

    @Test func documentersSyncThroughAPostgresNodeAndItVerifiesAndBacksUp() async throws {
        let url = try await PostgresTestCluster.freshDatabase()
        let database = url.connectionString
        let server = try await ServerProcess.start(
            binary: w.binary, arguments: ["serve", "--database", database, "--host", "127.0.0.1", "--port", "0"])
        #expect(server.log.contains("central node key sha256:"))
        for name in ["rima", "omar"] {
            try await w.initReplica(name)
            let added = try await w.binary.run(["server", "add-user", name, "--role", "documenter", "--database", database, "--json"])
            #expect(added.status == 0, "\(added)")
            let code = try #require(try added.json()["code"]?.stringValue)
            try await w.ok(name, "enroll", "--server", server.url, "--code", code)
        }
        let id = try await w.add("rima", "--title", "Shelling of the bakery", "--set", "casualties.injured=2")
        let photo = w.dir.file("photo.png")
        try Data(Fixtures.randomBytes(1_500_000, seed: 3)).write(to: URL(fileURLWithPath: photo))
        try await w.ok("rima", "attach", id, photo)
        try await w.ok("rima", "sync")
        try await w.ok("omar", "sync", "--attachments", "all")
        #expect(try await w.state("rima") == w.state("omar"))
        let fetched = w.dir.file("fetched.png")
        let sha = ContentHash.hex(of: Fixtures.randomBytes(1_500_000, seed: 3))
        try await w.ok("omar", "attachment", "get", id, String(sha.prefix(12)), "--out", fetched)
        #expect(try Data(contentsOf: URL(fileURLWithPath: fetched)) == Data(Fixtures.randomBytes(1_500_000, seed: 3)))

        let verified = try await w.binary.run(["verify", "--database", database, "--json"])
        #expect(verified.status == 0, "\(verified)")
        let report = try verified.json()
        #expect(report["sound"] == true)
        #expect(report["revisions"]?.intValue == 2)
        #expect(report["verified_signatures"]?.intValue == 2)
        #expect(report["attachments"]?["blobs"]?.intValue == 1)
        #expect(report["attachments"]?["receipts"]?.intValue == 1)

        let dump = w.dir.file("central.dump")
        let backup = try await w.binary.run(["backup", "--database", database, "--out", dump])
        #expect(backup.status == 0, "\(backup)")
        #expect((try FileManager.default.attributesOfItem(atPath: dump)[.size] as? Int ?? 0) > 1000)
        let again = try await w.binary.run(["backup", "--database", database, "--out", dump])
        #expect(again.status == 1 && again.stderr.contains("exists already"), "\(again)")
        #expect(await server.stop() == 0)
    }

    @Test func badDatabaseURLsAndANewerSchemaAreOneLineErrors() async throws {
        let bad = try await w.binary.run(["serve", "--database", "mysql://x@y/z", "--port", "0"])
        #expect(bad.status != 0 && bad.stderr.contains("is not a PostgreSQL URL"), "\(bad)")
        let noDatabase = try await w.binary.run(["server", "add-user", "a", "--role", "admin", "--database", "postgres://u@127.0.0.1:1/"])
        #expect(noDatabase.status != 0 && noDatabase.stderr.contains("names no database"), "\(noDatabase)")
        let unreachable = try await w.binary.run(["verify", "--database", "postgres://u@127.0.0.1:1/db?sslmode=disable"])
        #expect(unreachable.status == 1 && unreachable.stderr.contains("cannot reach PostgreSQL"), "\(unreachable)")
        #expect(unreachable.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1)

        let url = try await PostgresTestCluster.freshDatabase()
        let first = try await w.binary.run(["server", "add-user", "amira", "--role", "admin", "--database", url.connectionString])
        #expect(first.status == 0, "\(first)")
        try await PostgresTestCluster.execute("INSERT INTO fieldsync_schema (version, name, applied) VALUES (99, 'future', 0)", on: url)
        let newer = try await w.binary.run(["verify", "--database", url.connectionString])
        #expect(newer.status == 1 && newer.stderr.contains("newer than this fieldsync knows"), "\(newer)")
    }
}

/// `fieldsync server migrate`: an SQLite central node moved to PostgreSQL keeps serving the same
/// documenters, with the same tokens, key, history and attachments.
@Suite struct ServerMigrateTests {
    let w: CLIWorkspace
    init() throws { w = try CLIWorkspace("migrate") }

    @Test func aNodeMovedFromSQLiteToPostgreSQLServesTheSameDocumentersAndRefusesASecondCopy() async throws {
        let store = w.dir.file("central.sqlite")
        let old = try await ServerProcess.start(binary: w.binary, store: store)
        try await w.initReplica("rima", server: old.url, serverStore: store)
        try await w.initReplica("omar", server: old.url, serverStore: store)
        let id = try await w.add("rima", "--title", "Raid on the market", "--set", "casualties.killed=3")
        let photo = w.dir.file("photo.png")
        try Data(Fixtures.randomBytes(1_200_000, seed: 9)).write(to: URL(fileURLWithPath: photo))
        try await w.ok("rima", "attach", id, photo)
        try await w.ok("rima", "sync")
        try await w.ok("omar", "sync")
        try await w.ok("rima", "edit", id, "--set", "casualties.killed=4")
        try await w.ok("omar", "edit", id, "--set", "casualties.killed=5")
        try await w.ok("rima", "sync")
        try await w.ok("omar", "sync")
        let keyRange = try #require(old.log.range(of: #"central node key sha256:[0-9a-f]{64}"#, options: .regularExpression))
        let keyLine = String(old.log[keyRange])
        #expect(await old.stop() == 0)

        let url = try await PostgresTestCluster.freshDatabase()
        let migrated = try await w.binary.run(["server", "migrate", "--from", store, "--to", url.connectionString, "--json"])
        #expect(migrated.status == 0, "\(migrated)")
        let summary = try migrated.json()
        #expect(summary["revisions"]?.intValue == 4)
        #expect(summary["accounts"]?.intValue == 2)
        #expect(summary["attachments"]?.intValue == 1)
        #expect(summary["verified"] == true)
        let again = try await w.binary.run(["server", "migrate", "--from", store, "--to", url.connectionString])
        #expect(again.status == 1 && again.stderr.contains("already holds"), "\(again)")

        let new = try await ServerProcess.start(
            binary: w.binary, arguments: ["serve", "--database", url.connectionString, "--host", "127.0.0.1", "--port", "0"])
        #expect(new.log.contains(keyLine), "the same central node key")
        try await w.ok("rima", "edit", id, "--set", "narrative=After the move.")
        try await w.ok("rima", "sync", "--server", new.url)
        try await w.ok("omar", "sync", "--server", new.url, "--attachments", "all")
        #expect(try await w.state("rima") == w.state("omar"))
        let record = try await w.show("omar", id)
        #expect(record["conflicts"]?.arrayValue?.count == 1, "the conflict moved with the node")
        let verified = try await w.binary.run(["verify", "--database", url.connectionString, "--json"])
        #expect(verified.status == 0, "\(verified)")
        #expect(try verified.json()["revisions"]?.intValue == 5)
        #expect(await new.stop() == 0)
    }
}
