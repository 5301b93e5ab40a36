import FieldSyncCore
import FieldSyncProtocol
import FieldSyncTestSupport
import Foundation
import GRDB
import Testing

@testable import FieldSyncStore

/// An encrypted replica: sealed columns, the key checks, and what the file shows without the key.
@Suite struct SealedStoreTests {
    let dir: TemporaryDirectory
    init() throws { dir = try TemporaryDirectory("sealed") }

    static let markers = ["TITLEMARKER", "NARRATIVEMARKER", "PSEUDONYMMARKER", "PLACEMARKER", "AUTHORMARKER"]

    func sealedStore(_ name: String, key: StoreKey = .random()) throws -> (ReplicaStore, StoreKey, String) {
        let path = dir.file(name)
        return (try ReplicaStore.create(at: path, name: "AUTHORMARKER", now: 1, key: key), key, path)
    }

    func addMarkedIncident(_ store: ReplicaStore) throws -> RecordID {
        try Fixtures.addIncident(
            store, title: "TITLEMARKER",
            [
                .set(path: "narrative", value: .string("NARRATIVEMARKER")), .set(path: "location.place", value: .string("PLACEMARKER")),
                .addEntry(collection: "victims", fields: .object(["pseudonym": .string("PSEUDONYMMARKER"), "status": .string("killed")])),
            ])
    }

    /// Every byte of the replica's files, as SQLite left them.
    func fileBytes(_ path: String) throws -> [UInt8] {
        var bytes: [UInt8] = []
        for suffix in ["", "-wal", "-shm", "-journal"] where FileManager.default.fileExists(atPath: path + suffix) {
            bytes += Array(try Data(contentsOf: URL(fileURLWithPath: path + suffix)))
        }
        return bytes
    }

    @Test func aSealedReplicaWorksAndItsFileHoldsNoneOfItsText() throws {
        let (store, key, path) = try sealedStore("a.sqlite")
        #expect(store.isEncrypted)
        let id = try addMarkedIncident(store)
        try Fixtures.edit(store, id, [.set(path: "title", value: .string("TITLEMARKER edited"))])
        #expect(try store.record(id)?.value(at: "title")?.stringValue == "TITLEMARKER edited")
        #expect(try store.history(of: id).count == 2)
        #expect(try store.resolveID(String(id.rawValue.prefix(8))) == id)
        #expect(try store.records().map(\.id) == [id])
        #expect(try store.verify().problems.isEmpty)
        try store.close()

        let reopened = try ReplicaStore.open(at: path, key: key)
        #expect(try reopened.identity().name == "AUTHORMARKER")
        #expect(try reopened.history(of: id).last?.revision.author == "AUTHORMARKER")
        try reopened.close()
        let bytes = try fileBytes(path)
        for marker in Self.markers + [id.rawValue, String(id.rawValue.prefix(13))] {
            #expect(!bytes.contains(subsequence: Array(marker.utf8)), "\(marker) is in the file in clear")
        }
        // The sensitive columns hold ciphertext (BLOBs), the record id a token.
        let queue = try DatabaseQueue(path: path)
        let kinds = try queue.read { db in
            try String.fetchAll(
                db,
                sql: """
                    SELECT typeof(body) || typeof(received) FROM revision
                    UNION SELECT typeof(state) || typeof(title) || typeof(updated) FROM record
                    UNION SELECT typeof(name) FROM replica UNION SELECT typeof(private_key) || typeof(public_key) FROM device_key
                    """)
        }
        #expect(Set(kinds) == ["blobblob", "blobblobblob", "blob"])
        let token = try queue.read { db in try Data.fetchOne(db, sql: "SELECT id FROM record") }
        #expect(token?.count == 16, "a 16-byte token, not the id")
        #expect(try queue.read { db in try String.fetchOne(db, sql: "SELECT typeof(id) FROM record") } == "blob")
        try queue.close()
    }

    @Test func theKeyIsCheckedAtOpen() throws {
        let (store, _, path) = try sealedStore("k.sqlite")
        try store.close()
        #expect { try ReplicaStore.open(at: path) } throws: { ($0 as? StoreError)?.kind == .encrypted }
        #expect { try ReplicaStore.open(at: path, key: .random()) } throws: { ($0 as? StoreError)?.kind == .wrongKey }
        let plain = try ReplicaStore.create(at: dir.file("p.sqlite"), name: "Rima", now: 1)
        try plain.close()
        #expect { try ReplicaStore.open(at: dir.file("p.sqlite"), key: .random()) } throws: { ($0 as? StoreError)?.kind == .invalid }
    }

    @Test func ciphertextsSwappedBetweenRowsDoNotOpen() throws {
        let (store, key, path) = try sealedStore("s.sqlite")
        let first = try Fixtures.addIncident(store, title: "first")
        _ = try Fixtures.addIncident(store, title: "second")
        try store.close()
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            let bodies = try Data.fetchAll(db, sql: "SELECT body FROM revision ORDER BY seq")
            try db.execute(sql: "UPDATE revision SET body = ? WHERE seq = 1", arguments: [bodies[1]])
            try db.execute(sql: "UPDATE revision SET body = ? WHERE seq = 2", arguments: [bodies[0]])
        }
        try queue.close()
        let reopened = try ReplicaStore.open(at: path, key: key)
        #expect { try reopened.history(of: first) } throws: { error in
            (error as? StoreError)?.message.contains("does not open") == true
        }
        // The states were not touched: the record still reads.
        #expect(try reopened.record(first)?.value(at: "title")?.stringValue == "first")
    }

    @Test func aPlaintextReplicaIsCopiedSealedWithEverythingInIt() throws {
        let plainPath = dir.file("plain.sqlite")
        let plain = try ReplicaStore.create(at: plainPath, name: "AUTHORMARKER", now: 1)
        let id = try addMarkedIncident(plain)
        try Fixtures.edit(plain, id, [.set(path: "title", value: .string("TITLEMARKER 2"))])
        try plain.setServer("https://central.example.org")
        let before = try Fixtures.canonicalState(plain)
        try plain.close()
        let key = StoreKey.random()
        try ReplicaStore.writeSealedCopy(of: plainPath, to: dir.file("sealed.sqlite"), key: key)
        let sealed = try ReplicaStore.open(at: dir.file("sealed.sqlite"), key: key)
        #expect(try Fixtures.canonicalState(sealed) == before)
        #expect(try sealed.history(of: id).count == 2)
        #expect(try sealed.identity().server == "https://central.example.org")
        #expect(try sealed.verify().problems.isEmpty)
        // Writing goes on where the plaintext replica stopped.
        try Fixtures.edit(sealed, id, [.set(path: "title", value: .string("third"))])
        #expect(try sealed.history(of: id).last?.revision.dot.counter == 3)
        try sealed.close()
        let bytes = try fileBytes(dir.file("sealed.sqlite"))
        for marker in Self.markers { #expect(!bytes.contains(subsequence: Array(marker.utf8)), "\(marker)") }
    }

    @Test func aSealedReplicaReceivesFromAPlaintextOneByteForByte() throws {
        let plain = try ReplicaStore.create(at: dir.file("peer.sqlite"), name: "Omar", now: 1)
        let id = try addMarkedIncident(plain)
        let (store, _, _) = try sealedStore("r.sqlite")
        let revisions = try plain.allRevisions()
        let outcome = try store.receiveVerified(
            revisions, learning: [KeyEntry(node: try plain.identity().node, publicKey: try plain.publicKey())], now: 2)
        #expect(outcome.accepted == 1)
        let again = try store.receiveVerified(revisions, now: 3)
        #expect(again.duplicates == 1 && again.accepted == 0)
        #expect(try store.missing(from: VersionVector(), limit: 10).texts == [try #require(revisions.first).canonicalForms.text])
        #expect(try store.record(id)?.value(at: "narrative")?.stringValue == "NARRATIVEMARKER")
    }

    @Test func paddingHidesShortLengths() {
        #expect(ColumnSealer.paddedLength(3) == 64)
        #expect(ColumnSealer.paddedLength(63) == 64)
        #expect(ColumnSealer.paddedLength(65) == 128)
        #expect(ColumnSealer.paddedLength(256) == 256)
        // Padmé above: at most 12 % more, and lengths close together share a size.
        for length in [300, 1000, 5000, 100_000] {
            let padded = ColumnSealer.paddedLength(length)
            #expect(padded >= length && Double(padded) <= Double(length) * 1.12)
        }
        #expect(ColumnSealer.paddedLength(1000) == ColumnSealer.paddedLength(1010))
    }
}
