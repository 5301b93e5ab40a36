import FieldSyncBlobs
import FieldSyncClient
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncServer
import FieldSyncStore
import FieldSyncTestSupport
import Foundation
import Testing

/// The central node's attachment routes against a real server on 127.0.0.1, driven as a modified
/// client would (spec 19): bytes no revision references, wrong chunks, limits, and resumption.
@Suite struct AttachmentRouteTests {
    let dir: TemporaryDirectory
    init() throws { dir = try TemporaryDirectory("attachment-routes") }

    func replica(_ name: String, _ server: LiveServer) async throws -> ReplicaStore {
        let store = try ReplicaStore.create(at: dir.file("\(name).sqlite"), name: name, now: 1)
        try await server.enrol(store, as: name)
        // As `fieldsync enroll` does: the central node's key is pinned, so receipts verify.
        var enrolment = try #require(try store.enrolment())
        enrolment.serverKey = try server.store.publicKey()
        try store.saveEnrolment(enrolment, now: 1)
        return store
    }

    func push(_ store: ReplicaStore) async throws {
        let transport = try Enrolling.transport(for: store)
        _ = try await SyncDriver(store: store, transport: transport, retries: 0).run()
        await transport.shutdown()
    }

    func rejection(_ body: () async throws -> Void) async -> ProtocolError.Code? {
        do {
            try await body()
            return nil
        } catch SyncError.rejected(_, let error) {
            return error.code
        } catch { return nil }
    }

    @Test func bytesThatNoStoredRevisionReferencesAreRefused() async throws {
        let server = try await LiveServer.start(storePath: dir.file("server.sqlite"))
        defer { Task { await server.stop() } }
        let rima = try await replica("rima", server)
        let id = try Fixtures.addIncident(rima, title: "Market")
        // Attached locally, never pushed: the central node has no revision naming it.
        let manifest = try Fixtures.attach(rima, id, bytes: Fixtures.randomBytes(5000, seed: 1), in: dir.path)
        let transport = try Enrolling.transport(for: rima)
        defer { Task { await transport.shutdown() } }
        #expect(await rejection { try await transport.putManifest(manifest) } == .unreferenced)
        #expect(
            await rejection { try await transport.putChunk(0, of: manifest, from: 0, bytes: [1, 2, 3][...]) } == .unreferenced)
        #expect(
            try await transport.attachmentStatus([AttachmentQuery(sha256: manifest.sha256, manifest: manifest.hash)]) == [.unreferenced])
        // A made-up manifest for a referenced hash is refused too: only the referenced one is.
        try await push(rima)
        var forged = manifest
        forged.chunks[0] = String(repeating: "0", count: 64)
        #expect(await rejection { try await transport.putManifest(forged) } == .unreferenced)
        try await transport.putManifest(manifest)
        let blobs = dir.file("server.sqlite.blobs/objects")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: blobs))?.isEmpty ?? true, "nothing stored for the forgery")
    }

    @Test func aChunkWithOtherBytesIsRefusedAndTheRealOneThenCompletesWithAVerifiableReceipt() async throws {
        let server = try await LiveServer.start(storePath: dir.file("server.sqlite"))
        defer { Task { await server.stop() } }
        let rima = try await replica("rima", server)
        let id = try Fixtures.addIncident(rima, title: "Market")
        let bytes = Fixtures.randomBytes((1 << 20) + 300, seed: 2)
        let manifest = try Fixtures.attach(rima, id, bytes: bytes, in: dir.path)
        try await push(rima)
        let transport = try Enrolling.transport(for: rima)
        defer { Task { await transport.shutdown() } }
        try await transport.putManifest(manifest)
        var wrong = Array(bytes[0..<(1 << 20)])
        wrong[5] ^= 1
        #expect(await rejection { try await transport.putChunk(0, of: manifest, from: 0, bytes: wrong[...]) } == .chunkMismatch)
        #expect(await rejection { _ = try await transport.commitAttachment(manifest) } == .uploadConflict, "chunks are missing")
        #expect(
            await rejection { _ = try await transport.chunk(0, of: manifest) } == .notFound, "nothing is served before the commit")
        // Sent in two pieces, as after a dropped connection: the offset resumes the chunk.
        #expect(try await transport.putChunk(0, of: manifest, from: 0, bytes: bytes[0..<400_000]) == 400_000, "kept, and said so")
        #expect(
            await rejection { try await transport.putChunk(0, of: manifest, from: 500_000, bytes: bytes[500_000..<(1 << 20)]) }
                == .uploadConflict, "an offset beyond what arrived would leave a gap")
        #expect(
            try await transport.putChunk(0, of: manifest, from: 300_000, bytes: bytes[300_000..<700_000]) == 700_000,
            "a resend from an older offset skips what is held")
        try await transport.putChunk(0, of: manifest, from: 700_000, bytes: bytes[700_000..<(1 << 20)])
        try await transport.putChunk(1, of: manifest, from: 0, bytes: bytes[(1 << 20)...])
        let receipt = try await transport.commitAttachment(manifest)
        #expect(receipt.vouches(for: manifest.sha256, manifest.content, issuerKey: try server.store.publicKey()))
        #expect(receipt.account == "rima")
        #expect(receipt.node == (try rima.identity().node))
        #expect(!receipt.vouches(for: manifest.sha256, manifest.content, issuerKey: try rima.publicKey()), "only the central node's key")
        #expect(try await transport.chunk(1, of: manifest) == Array(bytes[(1 << 20)...]))
        let status = try await transport.attachmentStatus([AttachmentQuery(sha256: manifest.sha256, manifest: manifest.hash)])
        #expect(status == [.complete(receipt)])
        // The blob's file is lost on the server (a restore, an admin's mistake): the replica that
        // still holds the bytes uploads them again, and the first receipt stands.
        try FileManager.default.removeItem(atPath: dir.file("server.sqlite.blobs/objects/\(manifest.sha256.prefix(2))/\(manifest.sha256)"))
        #expect(
            try await transport.attachmentStatus([AttachmentQuery(sha256: manifest.sha256, manifest: manifest.hash)]) == [
                .unknown(needsManifest: false)
            ])
        let repaired = try await AttachmentTransfer(store: rima, transport: transport, retries: 0).uploadAll()
        #expect(repaired.receipts == 1)
        #expect(repaired.uploadedBytes == Int64(bytes.count))
        #expect(try rima.attachmentReceipt(manifest.sha256) == receipt, "the first receipt stands")
        #expect(try await transport.chunk(1, of: manifest) == Array(bytes[(1 << 20)...]))
    }

    @Test func sizeLimitAndQuotaAreRefusedBeforeAnyUploadStarts() async throws {
        let server = try await LiveServer.start(
            storePath: dir.file("server.sqlite"), maximumAttachmentSize: 100_000, attachmentQuota: 150_000)
        defer { Task { await server.stop() } }
        let rima = try await replica("rima", server)
        let id = try Fixtures.addIncident(rima, title: "Market")
        let big = try Fixtures.attach(rima, id, bytes: Fixtures.randomBytes(100_001, seed: 3), name: "big.mp4", in: dir.path)
        let first = try Fixtures.attach(rima, id, bytes: Fixtures.randomBytes(90_000, seed: 4), name: "a.jpg", in: dir.path)
        let second = try Fixtures.attach(rima, id, bytes: Fixtures.randomBytes(90_000, seed: 5), name: "b.jpg", in: dir.path)
        try await push(rima)
        let transport = try Enrolling.transport(for: rima)
        defer { Task { await transport.shutdown() } }
        #expect(await rejection { try await transport.putManifest(big) } == .tooLarge)
        try await transport.putManifest(first)
        #expect(await rejection { try await transport.putManifest(second) } == .quotaExceeded, "90,000 + 90,000 > 150,000")
        // The driver reports the refusal per attachment and keeps the local copy.
        let report = try await AttachmentTransfer(store: rima, transport: transport, retries: 0).uploadAll()
        #expect(report.receipts == 1)
        #expect(report.failed.count == 2)
        #expect(try rima.localState(of: second.sha256) == .complete)
    }

    @Test func everyRouteWantsTheTokenBeforeItReadsABody() async throws {
        let server = try await LiveServer.start(storePath: dir.file("server.sqlite"))
        defer { Task { await server.stop() } }
        let anonymous = try HTTPSyncTransport(baseURL: server.url)
        defer { Task { await anonymous.shutdown() } }
        let sha = String(repeating: "a", count: 64)
        let manifest = AttachmentManifest(sha256: sha, size: 1, chunkSize: 1 << 20, chunks: [sha])
        #expect(await rejection { try await anonymous.putManifest(manifest) } == .unauthorized)
        #expect(await rejection { try await anonymous.putChunk(0, of: manifest, from: 0, bytes: [1][...]) } == .unauthorized)
        #expect(await rejection { _ = try await anonymous.attachmentStatus([]) } == .unauthorized)
        #expect(await rejection { _ = try await anonymous.chunk(0, of: manifest) } == .unauthorized)
        #expect(await rejection { _ = try await anonymous.commitAttachment(manifest) } == .unauthorized)
    }
}
