import FieldSyncBlobs
import FieldSyncCore
import FieldSyncTestSupport
import Foundation
import Testing

/// The ``BlobStorage`` contract on a folder (the SQLite node's) and in PostgreSQL chunk rows:
/// uploads resumed below the chunk, hashes checked as chunks end and again at commit, write-once
/// blobs, expiry, and bit rot found by `verifyAll` (spec 19.4, 19.5).
@Suite struct BlobStorageConformanceTests {
    let dir: TemporaryDirectory
    let bytes = Fixtures.randomBytes((2 << 20) + 1000, seed: 42)
    let manifest: AttachmentManifest

    init() throws {
        dir = try TemporaryDirectory("blob-conformance")
        let path = dir.file("file")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        manifest = try FileDigester.digest(file: path)
    }

    func chunk(_ index: Int) -> [UInt8] {
        Array(bytes[Int(manifest.offset(ofChunk: index))..<Int(manifest.offset(ofChunk: index)) + manifest.length(ofChunk: index)])
    }

    func send(
        _ storage: any BlobStorage, _ index: Int, _ part: ArraySlice<UInt8>, at offset: Int, finish: Bool = true,
        manifest: AttachmentManifest? = nil
    ) async throws {
        let manifest = manifest ?? self.manifest
        try await storage.beginUpload(manifest)
        let upload = try await storage.openChunk(index, of: manifest, at: offset)
        try Array(part).withUnsafeBytes { try upload.append($0) }
        if finish { try await upload.finish() } else { await upload.abandon() }
    }

    @Test(arguments: CentralBackend.allCases)
    func anUploadCutMidChunkResumesFromTheBytesThatArrivedAndCommitsOnce(backend: CentralBackend) async throws {
        try await backend.with(in: dir) { _, storage, _ in
            #expect(try await storage.state(of: manifest) == .absent)
            try await send(storage, 0, chunk(0)[...], at: 0)
            try await send(storage, 1, chunk(1)[0..<300_000], at: 0, finish: false)
            #expect(try await storage.state(of: manifest) == .partial(missing: [1, 2], received: [1: 300_000]))
            await #expect("beyond what arrived would leave a gap") { try await storage.openChunk(1, of: manifest, at: 400_000) } throws: {
                ($0 as? BlobError)?.kind == .offset(received: 300_000)
            }
            #expect(try await storage.commit(manifest) == .incomplete(missing: [1, 2]))
            // A resend from an older offset skips what is held.
            try await send(storage, 1, chunk(1)[200_000...], at: 200_000)
            try await send(storage, 2, chunk(2)[...], at: 0)
            #expect(try await storage.commit(manifest) == .committed)
            #expect(try await storage.state(of: manifest) == .complete)
            #expect(try await storage.commit(manifest) == .committed, "committing again is harmless")
            var whole: [UInt8] = []
            for index in 0..<manifest.chunkCount { whole += try await storage.readChunk(index, of: manifest) }
            #expect(whole == bytes)
            await #expect(throws: BlobError.self) { try await storage.openChunk(0, of: manifest, at: 0) }
        }
    }

    @Test(arguments: CentralBackend.allCases)
    func aChunkWithOtherBytesIsDroppedAndNamed(backend: CentralBackend) async throws {
        try await backend.with(in: dir) { _, storage, _ in
            try await storage.beginUpload(manifest)
            let upload = try await storage.openChunk(0, of: manifest, at: 0)
            try Array(repeating: UInt8(7), count: manifest.length(ofChunk: 0)).withUnsafeBytes { try upload.append($0) }
            await #expect { try await upload.finish() } throws: { ($0 as? BlobError)?.kind == .mismatch }
            #expect(try await storage.state(of: manifest) == .partial(missing: [0, 1, 2], received: [:]))
            let tooMuch = try await storage.openChunk(2, of: manifest, at: 0)
            #expect(throws: BlobError.self) { try (chunk(2) + [1]).withUnsafeBytes { try tooMuch.append($0) } }
            await tooMuch.abandon()
            await #expect(throws: BlobError.self, "not in the manifest") { try await storage.openChunk(9, of: manifest, at: 0) }
        }
    }

    @Test(arguments: CentralBackend.allCases)
    func chunksNotBeginAndOtherManifestsAreRefused(backend: CentralBackend) async throws {
        try await backend.with(in: dir) { _, storage, _ in
            await #expect("no upload was started") { try await storage.openChunk(0, of: manifest, at: 0) } throws: {
                ($0 as? BlobError)?.kind == .offset(received: 0)
            }
            try await storage.beginUpload(manifest)
            var other = manifest
            other.chunkSize = manifest.chunkSize * 2
            other.chunks = [ContentHash.hex(of: Array(bytes[0..<(2 << 20)])), ContentHash.hex(of: Array(bytes[(2 << 20)...]))]
            await #expect { try await storage.beginUpload(other) } throws: { ($0 as? BlobError)?.kind == .busy }
        }
    }

    @Test(arguments: CentralBackend.allCases)
    func uploadsNobodyTouchedExpireAndCompleteBlobsNever(backend: CentralBackend) async throws {
        try await backend.with(in: dir) { _, storage, _ in
            try await send(storage, 0, chunk(0)[...], at: 0)
            #expect(try await storage.expireUploads(untouchedSince: Date().timeIntervalSince1970 - 3600).isEmpty, "touched just now")
            #expect(try await storage.expireUploads(untouchedSince: Date().timeIntervalSince1970 + 10) == [manifest.sha256])
            #expect(try await storage.state(of: manifest) == .absent)
            for index in 0..<3 { try await send(storage, index, chunk(index)[...], at: 0) }
            #expect(try await storage.commit(manifest) == .committed)
            #expect(try await storage.expireUploads(untouchedSince: Date().timeIntervalSince1970 + 10).isEmpty)
            #expect(try await storage.state(of: manifest) == .complete)
        }
    }

    @Test(arguments: CentralBackend.allCases)
    func aManifestThatLiesAboutTheWholeHashIsRefusedAtCommit(backend: CentralBackend) async throws {
        var lying = manifest
        lying.sha256 = String(repeating: "0", count: 64)
        let lyingManifest = lying
        try await backend.with(in: dir) { _, storage, _ in
            let lying = lyingManifest
            for index in 0..<3 { try await send(storage, index, chunk(index)[...], at: 0, manifest: lying) }
            await #expect(throws: BlobError.self) { try await storage.commit(lying) }
            #expect(try await storage.state(of: lying) == .absent)
        }
    }

    @Test(arguments: CentralBackend.allCases)
    func verifyNamesABlobWhoseBytesRotted(backend: CentralBackend) async throws {
        try await backend.with(in: dir) { _, storage, damage in
            for index in 0..<3 { try await send(storage, index, chunk(index)[...], at: 0) }
            #expect(try await storage.commit(manifest) == .committed)
            let sound = try await storage.verifyAll()
            #expect(sound.checked == 1 && sound.damaged.isEmpty && sound.bytes == Int64(bytes.count))
            try await damage(manifest.sha256, at: (1 << 20) + 77)
            #expect(try await storage.verifyAll().damaged == [manifest.sha256])
        }
    }
}
