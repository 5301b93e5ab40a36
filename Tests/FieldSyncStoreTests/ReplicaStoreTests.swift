import FieldSyncCore
import FieldSyncProtocol
import FieldSyncTestSupport
import Foundation
import GRDB
import Testing

@testable import FieldSyncStore

/// The SQLite replica: migrations, transactions and the rules of receiving revisions.
@Suite struct ReplicaStoreTests {
    let dir: TemporaryDirectory
    init() throws { dir = try TemporaryDirectory("store") }

    @Test func createRefusesToOverwriteAndFileIsPrivate() throws {
        let path = dir.file("a.sqlite")
        let store = try ReplicaStore.create(at: path, name: "Rima", now: 1)
        #expect(try store.identity().name == "Rima")
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(throws: StoreError.self) { try ReplicaStore.create(at: path, name: "Other", now: 1) }
        #expect(try ReplicaStore.open(at: path).identity().name == "Rima")
    }

    @Test func migrationsRunOnFreshAndExistingFiles() throws {
        let path = dir.file("m.sqlite")
        _ = try ReplicaStore.create(at: path, name: "Rima", now: 1)
        // Reopening an existing file re-runs the migrator without error and keeps the data.
        let reopened = try ReplicaStore.open(at: path)
        let id = try Fixtures.addIncident(reopened, title: "Looting of shops")
        #expect(try ReplicaStore.open(at: path).record(id) != nil)
        let queue = try DatabaseQueue(path: path)
        let applied = try queue.read { db in try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations") }
        #expect(
            applied == [
                "v1", "v2-security", "v3-tls", "v4-backup", "v5-forks", "v6-authority", "v7-certificates", "v8-sealing", "v9-attachments",
                "v10-last-sync",
            ])
        let tables = try queue.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        }
        #expect(Set(tables).isSuperset(of: ["replica", "revision", "knowledge", "record", "retired_node"]))
    }

    /// A replica file as an older build left it: migrated up to `migration`, with Rima's identity row.
    func legacyFile(_ name: String, upTo migration: String) throws -> String {
        let path = dir.file(name)
        let queue = try DatabaseQueue(path: path)
        try StoreSchema.migrator.migrate(queue, upTo: migration)
        try queue.write { db in
            try db.execute(sql: "INSERT INTO replica (id, node, name, server, created) VALUES (1, '0123456789abcdef', 'Rima', NULL, 1)")
        }
        try queue.close()
        return path
    }

    @Test func aVersion1FileIsMigratedAndGetsASigningKey() throws {
        let path = try legacyFile("old.sqlite", upTo: "v1")
        let store = try ReplicaStore.open(at: path)
        #expect(try store.identity().node.rawValue == "0123456789abcdef")
        #expect(SignatureCheck.isPublicKey(try store.publicKey()))
        let id = try Fixtures.addIncident(store, title: "Written after the upgrade")
        let revision = try #require(try store.history(of: id).first?.revision)
        #expect(SignatureCheck.isValid(revision, publicKeyBase64: try store.publicKey()))
    }

    @Test func aVersion3FileGainsTheBackupMarkAndABackupRekeysBeforeItsFirstWrite() throws {
        let path = try legacyFile("v3.sqlite", upTo: "v3-tls")
        // A pool leaves writes in the WAL: the backup must include them.
        let store = try ReplicaStore.open(at: path, access: .pool)
        let id = try Fixtures.addIncident(store, title: "Before the backup")
        #expect(try store.backupTime() == nil)
        let copyPath = dir.file("v3-backup.sqlite")
        try store.backup(to: copyPath, now: 42)
        let copy = try ReplicaStore.open(at: copyPath)
        #expect(try copy.backupTime() == 42)
        #expect(try copy.record(id) != nil)
        #expect(try copy.identity().node.rawValue == "0123456789abcdef", "opening a backup changes nothing")
        let later = try Fixtures.addIncident(copy, title: "After the restore")
        let identity = try copy.identity()
        #expect(identity.node.rawValue != "0123456789abcdef")
        #expect(identity.retiredNodes.map(\.rawValue) == ["0123456789abcdef"])
        #expect(try copy.history(of: later).first?.revision.dot == Dot(node: identity.node, counter: 1))
        #expect(try copy.backupTime() == nil)
        // Only the first write re-keys.
        _ = try Fixtures.addIncident(copy, title: "And another")
        #expect(try copy.identity().node == identity.node)
        #expect(try store.identity().node.rawValue == "0123456789abcdef", "the original keeps its node id")
        #expect(try copy.verify().isSound)
        try store.close()
        #expect(!FileManager.default.fileExists(atPath: path + "-wal"))
    }

    @Test func aStoreFromAFutureSchemaIsRefusedUnchanged() throws {
        let path = dir.file("future.sqlite")
        _ = try ReplicaStore.create(at: path, name: "Rima", now: 1)
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')") }
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect { try ReplicaStore.open(at: path) } throws: { ($0 as? StoreError)?.kind == .newerSchema }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    }

    @Test func aFileThatIsNotSQLiteIsRefused() throws {
        let path = dir.file("notes.txt")
        try Data("these are my notes, not a database\n".utf8 + Array(repeating: 0x41, count: 200)).write(to: URL(fileURLWithPath: path))
        #expect { try ReplicaStore.open(at: path) } throws: { ($0 as? StoreError)?.kind == .notAStore }
        #expect { try ReplicaStore.open(at: dir.file("missing.sqlite")) } throws: { ($0 as? StoreError)?.kind == .noReplica }
    }

    @Test func aFailingBuilderWritesNothing() throws {
        let store = try ReplicaStore.create(at: dir.file("t.sqlite"), name: "Rima", now: 1)
        let id = try Fixtures.addIncident(store, title: "Detentions at checkpoint")
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            _ = try store.commitLocal(records: [RecordID.generate(millisecondsSince1970: 5), id], now: 5) { index, _ in
                if index == 1 { throw Boom() }
                return (.put, [.set(path: "title", value: "first")], nil)
            }
        }
        #expect(try store.status().revisions == 1)
        #expect(try store.status().records == 1)
        #expect(try store.knowledge().total == 1)
    }

    @Test func verifiedRevisionsAreStoredAsTheirCanonicalText() throws {
        let source = try ReplicaStore.create(at: dir.file("src.sqlite"), name: "Rima", now: 1)
        for i in 0..<70 { try Fixtures.addIncident(source, title: "Raid \(i) on the \"old\" market\ncafe\u{301}") }
        let all = try source.allRevisions()
        let target = try ReplicaStore.create(at: dir.file("dst.sqlite"), name: "Omar", now: 1)
        let key = KeyEntry(node: try source.identity().node, publicKey: try source.publicKey())
        #expect(try target.receiveVerified(all, learning: [key], now: 2).accepted == 70)
        // The texts written from the ahead-of-transaction check are the canonical encodings, byte for byte.
        let stored = try target.missing(from: VersionVector(), limit: 100).texts
        #expect(stored.map { Array($0.utf8) } == all.map { Array($0.json.canonicalText.utf8) })
        #expect(try target.verify().isSound)
    }

    @Test func aBatchWithACausalGapIsRejectedWhole() throws {
        let source = try ReplicaStore.create(at: dir.file("src.sqlite"), name: "Rima", now: 1)
        let id = try Fixtures.addIncident(source, title: "Shelling")
        try Fixtures.edit(source, id, [.set(path: "casualties.killed", value: 3)])
        try Fixtures.edit(source, id, [.set(path: "casualties.killed", value: 4)])
        let all = try source.allRevisions()
        let target = try ReplicaStore.create(at: dir.file("dst.sqlite"), name: "Omar", now: 1)
        #expect { try target.receive([all[0], all[2]], now: 2) } throws: { ($0 as? ProtocolError)?.code == .causalGap }
        #expect(try target.status().revisions == 0)
        #expect(try target.records().isEmpty)
        let outcome = try target.receive(all, now: 3)
        #expect(outcome.accepted == 3)
        #expect(try target.receive(all, now: 4).duplicates == 3)
        #expect(try Fixtures.canonicalState(target) == Fixtures.canonicalState(source))
    }

    @Test func aSecondContentForAHeldDotIsKeptAsideNeverMerged() throws {
        // A copy of Rima's file writes its own first revision: another content, signed with her key.
        let source = try ReplicaStore.create(at: dir.file("s.sqlite"), name: "Rima", now: 1)
        try FileManager.default.copyItem(atPath: source.path, toPath: dir.file("copy.sqlite"))
        try Fixtures.addIncident(source, title: "Original title")
        let copy = try ReplicaStore.open(at: dir.file("copy.sqlite"))
        try Fixtures.addIncident(copy, title: "Altered title", now: 1_741_340_000_001)
        let forged = try copy.allRevisions()[0]
        let target = try ReplicaStore.create(at: dir.file("d.sqlite"), name: "Omar", now: 1)
        let keys = [KeyEntry(node: try source.identity().node, publicKey: try source.publicKey())]
        _ = try target.receiveVerified(try source.allRevisions(), learning: keys, now: 2)
        // A second content that its node did not sign is a forgery, not evidence: the batch is refused.
        var unsigned = forged
        unsigned.operations = [.set(path: "title", value: "Forged title")]
        #expect { try target.receiveVerified([unsigned], now: 3) } throws: { ($0 as? ProtocolError)?.code == .badSignature }
        #expect(try target.forkedRevisions().isEmpty)
        let outcome = try target.receiveVerified([forged], now: 3)
        #expect(outcome.setAside == 1 && outcome.accepted == 0 && outcome.duplicates == 0)
        #expect(!outcome.ownNodeForked)
        #expect(try target.records()[0].value(at: "title") == "Original title", "the first content is kept")
        let aside = try target.forkedRevisions()
        #expect(aside.map(\.dot) == [forged.dot])
        #expect(aside.first?.reason == "received")
        // Kept once, however often it comes; the store stays sound and lists it.
        #expect(try target.receive([forged], now: 4).setAside == 1)
        #expect(try target.forkedRevisions().count == 1)
        #expect(try target.status().forkedRevisions == 1)
        let report = try target.verify()
        #expect(report.isSound, "\(report.problems)")
        #expect(report.setAside.map(\.dot) == [forged.dot])
        #expect(try target.missing(from: VersionVector(), limit: 10).texts.count == 1, "evidence is never sent on")
    }

    @Test func aPushOfTheStoresOwnForkIsRefusedAndARelayedOneKeptAside() throws {
        let source = try ReplicaStore.create(at: dir.file("s.sqlite"), name: "Rima", now: 1)
        try Fixtures.addIncident(source, title: "Original title")
        let original = try source.allRevisions()[0]
        var forged = original
        forged.operations = [.set(path: "title", value: "Altered title")]
        let server = try ReplicaStore.create(at: dir.file("server.sqlite"), name: "central", now: 1, access: .pool)
        _ = try server.receive([original], now: 2)
        let owner = original.dot.node
        #expect { try server.receive([forged], forks: .refuseFrom(owner: owner), now: 3) } throws: { ($0 as? ProtocolError)?.code == .fork }
        #expect(try server.forkedRevisions().isEmpty, "a refused batch leaves nothing behind")
        let relayed = try server.receive([forged], forks: .refuseFrom(owner: NodeID("0123456789abcdef")!), now: 4)
        #expect(relayed.setAside == 1)
        #expect(try server.record(original.record)?.value(at: "title") == "Original title")
    }

    @Test func theRestOfAForkedBranchAndWorkOnItAreKeptAsideWithoutBlockingTheBatch() throws {
        // Rima writes 1..3; a copy of her replica made at 1 writes its own 2', 3' and 4'.
        let rima = try ReplicaStore.create(at: dir.file("rima.sqlite"), name: "Rima", now: 1)
        let id = try Fixtures.addIncident(rima, title: "Original")
        let copyPath = dir.file("copy.sqlite")
        try FileManager.default.copyItem(atPath: rima.path, toPath: copyPath)
        let copy = try ReplicaStore.open(at: copyPath)
        for title in ["Rima 2", "Rima 3"] { try Fixtures.edit(rima, id, [.set(path: "title", value: .string(title))]) }
        for title in ["Copy 2", "Copy 3", "Copy 4"] { try Fixtures.edit(copy, id, [.set(path: "title", value: .string(title))]) }
        // Layla took the copy's history and wrote on top of its 4'.
        let layla = try ReplicaStore.create(at: dir.file("layla.sqlite"), name: "Layla", now: 1)
        let copied = try copy.allRevisions()
        _ = try layla.receive(copied, now: 2)
        try Fixtures.edit(layla, id, [.set(path: "narrative", value: "Seen by Layla.")])
        let laylas = try #require(try layla.allRevisions().last)

        // Omar holds Rima's history, then gets the copy's branch and Layla's work in one batch.
        let omar = try ReplicaStore.create(at: dir.file("omar.sqlite"), name: "Omar", now: 1)
        let keys = [
            KeyEntry(node: try rima.identity().node, publicKey: try rima.publicKey()),
            KeyEntry(node: try layla.identity().node, publicKey: try layla.publicKey()),
        ]
        _ = try omar.receiveVerified(try rima.allRevisions(), learning: keys, now: 2)
        let outcome = try omar.receiveVerified(Array(copied.dropFirst()) + [laylas], now: 3)
        // 2' and 3': second contents; 4': chains onto 3', not Rima's 3; Layla's: needs 4'.
        #expect(outcome.setAside == 4 && outcome.accepted == 0, "\(outcome)")
        #expect(try omar.record(id)?.value(at: "title") == "Rima 3")
        #expect(Set(try omar.forkedRevisions().map(\.dot.counter)) == [2, 3, 4, 1])
        #expect(copied[3].previous == RevisionChain.hash(ofText: copied[2].json.canonicalText))
        let report = try omar.verify()
        #expect(report.isSound, "\(report.problems)")
        #expect(report.setAside.count == 4)
    }

    @Test func anInvalidFieldFromAPeerIsRejected() throws {
        let target = try ReplicaStore.create(at: dir.file("v.sqlite"), name: "Omar", now: 1)
        let bad = Revision(
            dot: Dot(node: .random(), counter: 1), record: .generate(millisecondsSince1970: 1),
            operations: [.set(path: "title", value: "x"), .set(path: "casualties.killed", value: -3)], context: VersionVector(),
            author: "M", time: 1)
        #expect { try target.receive([bad], now: 2) } throws: { ($0 as? ProtocolError)?.code == .invalidField }
        #expect(try target.status().revisions == 0)
    }

    @Test func missingPagesInCausalOrder() throws {
        let store = try ReplicaStore.create(at: dir.file("p.sqlite"), name: "Rima", now: 1)
        for i in 0..<7 { try Fixtures.addIncident(store, title: "Incident \(i)") }
        var peer = VersionVector()
        var received: [Revision] = []
        while true {
            let page = try store.missing(from: peer, limit: 3)
            let revisions = try page.texts.map { try Revision(json: JSONValue(parsing: $0)) }
            received += revisions
            for r in revisions { peer.add(r.dot) }
            if !page.more { break }
        }
        #expect(received.map(\.dot.counter) == Array(1...7))
        #expect(try store.missing(from: peer, limit: 3).texts.isEmpty)
    }

    /// Pages from many nodes and any peer knowledge are exactly the log-order run of what the peer
    /// lacks, as the definition (filter the whole log) gives.
    @Test func missingPagesFromManyNodesMatchTheDefinition() throws {
        let hub = try ReplicaStore.create(at: dir.file("hub.sqlite"), name: "Hub", now: 1)
        var rng = SystemRandomNumberGenerator()
        for n in 0..<12 {
            let writer = try ReplicaStore.create(at: dir.file("w\(n).sqlite"), name: "W\(n)", now: 1)
            for i in 0..<Int.random(in: 1...6, using: &rng) { try Fixtures.addIncident(writer, title: "W\(n) incident \(i)") }
            _ = try hub.receive(try writer.allRevisions(), now: 2)
        }
        let log = try hub.allRevisions()
        let mine = try hub.knowledge()
        for _ in 0..<40 {
            var peer = VersionVector()
            for node in mine.nodes where Bool.random(using: &rng) { peer[node] = UInt64.random(in: 0...mine[node], using: &rng) }
            let limit = Int.random(in: 1...20, using: &rng)
            let expected = log.filter { !peer.covers($0.dot) }
            let page = try hub.missing(from: peer, limit: limit)
            #expect(page.texts == expected.prefix(limit).map { $0.json.canonicalText })
            #expect(page.more == (expected.count > limit))
        }
        #expect(try hub.missing(from: mine, limit: 5) == MissingRevisions(texts: [], more: false))
    }

    @Test func idPrefixesResolveLikeGit() throws {
        let store = try ReplicaStore.create(at: dir.file("ids.sqlite"), name: "Rima", now: 1)
        let id = try Fixtures.addIncident(store, title: "A")
        #expect(try store.resolveID(String(id.rawValue.prefix(8))) == id)
        #expect(try store.resolveID(id.rawValue.uppercased()) == id)
        #expect { try store.resolveID("ab") } throws: { ($0 as? StoreError)?.kind == .invalid }
        #expect { try store.resolveID("ffffffff") } throws: { ($0 as? StoreError)?.kind == .notFound }
    }

    @Test func retiringANodeIDKeepsTheOldOne() throws {
        let store = try ReplicaStore.create(at: dir.file("r.sqlite"), name: "Rima", now: 1)
        let old = try store.identity().node
        let fresh = try store.retireNodeID(reason: "test", now: 2)
        #expect(fresh != old)
        #expect(try store.identity().node == fresh)
        #expect(try store.identity().retiredNodes == [old])
    }

    /// Past its fourth revision a node's key is tabulated (`SignatureChecker`): a revision altered
    /// after that is still found, and only that one.
    @Test func verifyFindsOneBadSignatureAmongManyOfOneKey() throws {
        let path = dir.file("verify-many.sqlite")
        let store = try ReplicaStore.create(at: path, name: "Rima", now: 1)
        for index in 1...8 { _ = try Fixtures.addIncident(store, title: "Raid \(index)") }
        #expect(try store.verify().verifiedSignatures == 8)
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in try db.execute(sql: "UPDATE revision SET body = replace(body, 'Raid 7', 'Raid 9') WHERE counter = 7") }
        let report = try store.verify()
        #expect(report.verifiedSignatures == 7)
        #expect(report.problems.filter { $0.contains("bad signature") }.count == 1)
        #expect(report.problems.contains { $0.contains(":7: bad signature") })
    }

    /// States are stored with each long text once (`RecordState.storedText`); a state a store wrote
    /// before, in the full canonical form, still reads and verifies, and is rewritten at its next change.
    @Test func aStateInTheFormerFullFormReadsVerifiesAndIsRewrittenCompactly() throws {
        let path = dir.file("stored-form.sqlite")
        let store = try ReplicaStore.create(at: path, name: "Rima", now: 1)
        let narrative = String(repeating: "The convoy stopped at the bridge and the men were taken away. ", count: 10)
        let id = try Fixtures.addIncident(store, title: "Detentions at the bridge", [.set(path: "narrative", value: .string(narrative))])
        let state = try #require(try store.record(id))
        let queue = try DatabaseQueue(path: path)
        func storedText() throws -> String {
            try queue.read { db in try String.fetchOne(db, sql: "SELECT state FROM record WHERE id = ?", arguments: [id.rawValue]) ?? "" }
        }
        #expect(try storedText() == state.storedText)
        #expect(try storedText().components(separatedBy: narrative).count == 2, "the narrative is stored once")
        // As a store of the previous version wrote it.
        try queue.write { db in
            try db.execute(sql: "UPDATE record SET state = ? WHERE id = ?", arguments: [state.canonicalText, id.rawValue])
        }
        #expect(try storedText().components(separatedBy: narrative).count == 3)
        #expect(try store.record(id) == state)
        #expect(try store.verify().isSound)
        try Fixtures.edit(store, id, [.set(path: "casualties.killed", value: 2)])
        let edited = try #require(try store.record(id))
        #expect(edited.value(at: "narrative") == .string(narrative))
        #expect(try storedText() == edited.storedText)
        #expect(try store.verify().isSound)
    }

    /// A new file has 8 KiB pages, with or without a write-ahead log; an existing one keeps its own.
    @Test(arguments: [ReplicaStore.Access.single, .pool])
    func aNewStoreHasPagesOf8KiB(access: ReplicaStore.Access) throws {
        let path = dir.file("pages-\(access).sqlite")
        let store = try ReplicaStore.create(at: path, name: "Rima", now: 1, access: access)
        _ = try Fixtures.addIncident(store, title: "Shelling of the market")
        try store.close()
        let queue = try DatabaseQueue(path: path)
        #expect(try queue.read { db in try Int.fetchOne(db, sql: "PRAGMA page_size") } == 8192)

        let older = dir.file("older-\(access).sqlite")
        let made = try DatabaseQueue(path: older)
        try made.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA page_size = 4096; CREATE TABLE t (x); DROP TABLE t") }
        try made.close()
        _ = try? ReplicaStore.open(at: older)
        #expect(try DatabaseQueue(path: older).read { db in try Int.fetchOne(db, sql: "PRAGMA page_size") } == 4096)
    }

    @Test func verifyFindsTamperingAndGaps() throws {
        let path = dir.file("verify.sqlite")
        let store = try ReplicaStore.create(at: path, name: "Rima", now: 1)
        let id = try Fixtures.addIncident(store, title: "Raid", [.set(path: "casualties.killed", value: 3)])
        try Fixtures.edit(store, id, [.set(path: "casualties.killed", value: 4)])
        try Fixtures.addIncident(store, title: "Looting")
        let sound = try store.verify()
        #expect(sound.isSound, "\(sound.problems)")
        #expect(sound.revisions == 3)
        #expect(sound.verifiedSignatures == 3)

        let queue = try DatabaseQueue(path: path)
        // A materialized state edited behind FieldSync's back.
        try queue.write { db in
            try db.execute(
                sql: "UPDATE record SET state = replace(state, '\"value\":4', '\"value\":40') WHERE id = ?", arguments: [id.rawValue])
        }
        #expect(try store.verify().problems.contains { $0.contains("differs from a replay") })
        // A revision's content altered: its signature no longer matches.
        try queue.write { db in try db.execute(sql: "UPDATE revision SET body = replace(body, '\"value\":3', '\"value\":30')") }
        #expect(try store.verify().problems.contains { $0.contains("bad signature") })
        // A revision removed from the middle of the log: a gap.
        try queue.write { db in try db.execute(sql: "DELETE FROM revision WHERE counter = 2") }
        let broken = try store.verify()
        #expect(broken.problems.contains { $0.contains("without gaps") })
        #expect(!broken.isSound)
    }
}
