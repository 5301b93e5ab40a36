import FieldSyncBlobs
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore
import FieldSyncTestSupport
import Foundation
import Testing

/// A replica's side of attachments: references learned from revisions, manifests kept only when
/// referenced, and sealed chunk files in an encrypted replica.
@Suite struct AttachmentStoreTests {
    let dir: TemporaryDirectory
    init() throws { dir = try TemporaryDirectory("attachment-store") }

    @Test func revisionsTeachTheReplicaWhichBytesAreReferenced() throws {
        let rima = try ReplicaStore.create(at: dir.file("rima.sqlite"), name: "Rima", now: 1)
        let omar = try ReplicaStore.create(at: dir.file("omar.sqlite"), name: "Omar", now: 1)
        let id = try Fixtures.addIncident(rima, title: "Market")
        let manifest = try Fixtures.attach(rima, id, bytes: Fixtures.randomBytes(70_000, seed: 1), in: dir.path)
        #expect(try rima.attachmentReferences(manifest.sha256) == [manifest.content])
        #expect(try rima.localState(of: manifest.sha256) == .complete)
        // Omar learns the reference with the revisions, not the bytes.
        #expect(try omar.attachmentReferences(manifest.sha256).isEmpty)
        #expect(throws: StoreError.self, "a manifest nothing references is not kept") { try omar.storeAttachmentManifest(manifest) }
        _ = try omar.receive(try rima.allRevisions(), now: 2)
        #expect(try omar.attachmentReferences(manifest.sha256) == [manifest.content])
        #expect(try omar.localState(of: manifest.sha256) == .absent)
        try omar.storeAttachmentManifest(manifest)
        #expect(try omar.attachmentManifest(hash: manifest.hash) == manifest)
        var other = manifest
        other.chunks[0] = String(repeating: "f", count: 64)
        #expect(throws: StoreError.self, "only the referenced manifest") { try omar.storeAttachmentManifest(other) }
        // Removing the attachment keeps the reference: the bytes stay wanted (spec 19.5).
        try Fixtures.edit(rima, id, [.removeEntry(collection: "attachments", entry: manifest.sha256)])
        #expect(try rima.record(id)?.fields["attachments"] == nil)
        #expect(try rima.attachmentReferences(manifest.sha256) == [manifest.content])
    }

    @Test func anEncryptedReplicaSealsItsChunkFilesAndNamesThemByAKeyedHash() throws {
        let store = try ReplicaStore.create(at: dir.file("sealed.sqlite"), name: "Rima", now: 1, key: StoreKey.random())
        let id = try Fixtures.addIncident(store, title: "Market")
        let bytes = Fixtures.randomBytes((1 << 20) + 5000, seed: 2)
        let manifest = try Fixtures.attach(store, id, bytes: bytes, in: dir.path)
        let root = store.blobs.root
        let files = try FileManager.default.subpathsOfDirectory(atPath: root).filter { !$0.hasPrefix("staging") && $0.count > 3 }
        #expect(files.count == 2)
        for file in files {
            #expect(!file.contains(manifest.sha256), "no name carries the hash")
            let raw = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(root)/\(file)")))
            #expect(!raw.contains(subsequence: Array(bytes[5000..<5064])))
            #expect(!raw.contains(subsequence: Array(bytes[(1 << 20)..<(1 << 20) + 64])))
        }
        #expect(try store.blobs.chunk(1, of: manifest) == Array(bytes[(1 << 20)...]))
        // The last chunk is padded: its file does not tell the size to the byte.
        var info = stat()
        #expect(stat(store.blobs.chunkPath(manifest.sha256, 1), &info) == 0)
        #expect(Int(info.st_size) > 5000 + 1 + 12 + 16 + 1)
        // A chunk file put in another's place does not open.
        try FileManager.default.removeItem(atPath: store.blobs.chunkPath(manifest.sha256, 1))
        try FileManager.default.copyItem(
            atPath: store.blobs.chunkPath(manifest.sha256, 0), toPath: store.blobs.chunkPath(manifest.sha256, 1))
        #expect(throws: BlobError.self) { try store.blobs.chunk(1, of: manifest) }
        #expect(try store.localState(of: manifest.sha256) == .complete, "present, though damaged: verify tells them apart")
    }

    @Test func receiptsAreVerifiedAgainstThePinnedKeyAndTheReference() throws {
        let store = try ReplicaStore.create(at: dir.file("r.sqlite"), name: "Rima", now: 1)
        let id = try Fixtures.addIncident(store, title: "Market")
        let manifest = try Fixtures.attach(store, id, bytes: Fixtures.randomBytes(10_000, seed: 3), in: dir.path)
        let central = DeviceKey.generate()
        try store.saveEnrolment(
            Enrolment(server: "http://127.0.0.1:1", token: "t", user: "rima", role: .documenter, serverKey: central.publicKeyBase64), now: 1
        )
        #expect(try store.receiptStatus(manifest.sha256, manifest.content) == "none")
        let node = try store.identity().node
        try store.storeAttachmentReceipt(
            try AttachmentReceipt.issue(
                sha256: manifest.sha256, size: manifest.size + 1, manifest: manifest.hash, received: 5, node: node, account: "rima",
                by: central))
        #expect(try store.receiptStatus(manifest.sha256, manifest.content) == "invalid", "another size")
        try store.storeAttachmentReceipt(
            try AttachmentReceipt.issue(
                sha256: manifest.sha256, size: manifest.size, manifest: manifest.hash, received: 5, node: node, account: "rima", by: central
            ))
        #expect(try store.receiptStatus(manifest.sha256, manifest.content) == "verified")
    }
}
