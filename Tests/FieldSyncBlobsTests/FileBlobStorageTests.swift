import FieldSyncBlobs
import FieldSyncCore
import FieldSyncTestSupport
import Foundation
import Testing

/// The central node's blob folder: uploads resumed below the chunk, hashes checked while streaming
/// and again at commit, write-once blobs, expiry and bit-rot checks (spec 19.4, 19.5).
@Suite struct FileBlobStorageTests {
    let dir: TemporaryDirectory
    let storage: FileBlobStorage
    let bytes = AttachmentManifestTests.pattern((2 << 20) + 1000)
    let manifest: AttachmentManifest

    init() throws {
        dir = try TemporaryDirectory("blobs")
        storage = try FileBlobStorage(root: dir.file("blobs"))
        let path = dir.file("file")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        manifest = try FileDigester.digest(file: path)
    }

    func chunk(_ index: Int) -> [UInt8] {
        Array(bytes[Int(manifest.offset(ofChunk: index))..<Int(manifest.offset(ofChunk: index)) + manifest.length(ofChunk: index)])
    }

    func send(_ index: Int, _ part: ArraySlice<UInt8>, at offset: Int, finish: Bool = true) async throws {
        try await storage.beginUpload(manifest)
        let upload = try await storage.openChunk(index, of: manifest, at: offset)
        try Array(part).withUnsafeBytes { try upload.append($0) }
        if finish { try await upload.finish() } else { await upload.abandon() }
    }

    @Test func anUploadCutMidChunkResumesFromTheBytesThatArrived() async throws {
        #expect(try await storage.state(of: manifest) == .absent)
        try await send(0, chunk(0)[...], at: 0)
        // Chunk 1 is cut after 300,000 bytes: they are kept, and the upload says so.
        try await send(1, chunk(1)[0..<300_000], at: 0, finish: false)
        #expect(try await storage.state(of: manifest) == .partial(missing: [1, 2], received: [1: 300_000]))
        // Resuming beyond what arrived is refused: it would leave a gap.
        await #expect(throws: BlobError.self) { try await storage.openChunk(1, of: manifest, at: 400_000) }
        try await send(1, chunk(1)[300_000...], at: 300_000)
        try await send(2, chunk(2)[...], at: 0)
        #expect(try await storage.state(of: manifest) == .partial(missing: [], received: [:]))
        #expect(try await storage.commit(manifest) == .committed)
        #expect(try await storage.state(of: manifest) == .complete)
        #expect(try await storage.readChunk(1, of: manifest) == chunk(1))
        let stored = try Data(contentsOf: URL(fileURLWithPath: storage.root + "/objects/\(manifest.sha256.prefix(2))/\(manifest.sha256)"))
        #expect([UInt8](stored) == bytes)
        #expect(try await storage.verifyAll() == BlobVerification(checked: 1, bytes: Int64(bytes.count), damaged: []))
    }

    @Test func aChunkWhoseBytesDoNotMatchTheManifestIsRefusedAndDropped() async throws {
        try await storage.beginUpload(manifest)
        var wrong = chunk(0)
        wrong[10] ^= 0xFF
        let upload = try await storage.openChunk(0, of: manifest, at: 0)
        try wrong.withUnsafeBytes { try upload.append($0) }
        await #expect(throws: BlobError.self) { try await upload.finish() }
        #expect(try await storage.state(of: manifest) == .partial(missing: [0, 1, 2], received: [:]))
        // More bytes than the chunk holds are refused as they arrive.
        let again = try await storage.openChunk(0, of: manifest, at: 0)
        #expect(throws: BlobError.self) { try (chunk(0) + [1]).withUnsafeBytes { try again.append($0) } }
        await again.abandon()
    }

    @Test func chunksAreRefusedUntilAnUploadIsBegun() async throws {
        await #expect(throws: BlobError.self) { try await storage.openChunk(0, of: manifest, at: 0) }
        try await storage.beginUpload(manifest)
        #expect(try await storage.state(of: manifest) == .partial(missing: [0, 1, 2], received: [:]))
        // A begun upload nobody sends to expires like any other.
        #expect(try await storage.expireUploads(untouchedSince: Date().timeIntervalSince1970 + 10) == [manifest.sha256])
        await #expect(throws: BlobError.self) { try await storage.openChunk(0, of: manifest, at: 0) }
    }

    /// A modified client references the same bytes under a manifest of its own (another chunk size,
    /// chunk hashes of its garbage): it can neither join the upload under way nor write into it.
    @Test func anotherManifestOfTheSameBytesCannotWriteIntoAnUploadUnderWay() async throws {
        try await storage.beginUpload(manifest)
        let count = AttachmentContent.chunkCount(size: manifest.size, chunkSize: 256 << 10)
        let other = AttachmentManifest(
            sha256: manifest.sha256, size: manifest.size, chunkSize: 256 << 10,
            chunks: Array(repeating: String(repeating: "e", count: 64), count: count))
        await #expect(throws: BlobError.self) { try await storage.beginUpload(other) }
        await #expect(throws: BlobError.self) { try await storage.openChunk(9, of: other, at: 0) }
        #expect(try await storage.state(of: other) == .absent)
        await #expect(throws: BlobError.self) { try await storage.commit(other) }
        // Nor can a request left over from a dropped connection write into the committed blob.
        for index in 0..<3 { try await send(index, chunk(index)[...], at: 0) }
        let late = try await storage.openChunk(2, of: manifest, at: manifest.length(ofChunk: 2))
        #expect(try await storage.commit(manifest) == .committed)
        #expect(throws: BlobError.self) { try [UInt8](repeating: 0, count: 0).withUnsafeBytes { try late.append($0) } }
        await late.abandon()
        #expect(try await storage.readChunk(0, of: manifest) == chunk(0))
    }

    /// A client that reconnects after a dropped link takes its chunk over from its own dead request
    /// at once; the older request can no longer write.
    @Test func aNewerWriterTakesAChunkOverAndTheOlderOneCanNoLongerWrite() async throws {
        try await storage.beginUpload(manifest)
        let first = try await storage.openChunk(0, of: manifest, at: 0)
        try chunk(0)[0..<1000].withUnsafeBytes { try first.append($0) }
        await #expect(throws: BlobError.self, "not beyond what arrived") { try await storage.openChunk(0, of: manifest, at: 5000) }
        // The reconnected client resends from an older offset: what is held is skipped.
        let second = try await storage.openChunk(0, of: manifest, at: 500)
        #expect(throws: BlobError.self) { try chunk(0)[1000..<2000].withUnsafeBytes { try first.append($0) } }
        try chunk(0)[500...].withUnsafeBytes { try second.append($0) }
        #expect(try await second.finish())
        await first.abandon()
        #expect(try await storage.state(of: manifest) == .partial(missing: [1, 2], received: [:]))
    }

    @Test func commitReHashesWhatIsOnDiskAndNamesDamagedChunks() async throws {
        for index in 0..<3 { try await send(index, chunk(index)[...], at: 0) }
        // Bit rot in the upload file after the chunk was checked.
        let handle = FileHandle(forUpdatingAtPath: storage.root + "/uploads/\(manifest.sha256).data")!
        try handle.seek(toOffset: UInt64(1 << 20) + 5)
        handle.write(Data([0x55]))
        try handle.close()
        #expect(try await storage.commit(manifest) == .mismatch(chunks: [1]))
        #expect(try await storage.state(of: manifest) == .partial(missing: [1], received: [:]))
        #expect(try await storage.commit(manifest) == .incomplete(missing: [1]))
        try await send(1, chunk(1)[...], at: 0)
        #expect(try await storage.commit(manifest) == .committed)
    }

    @Test func verifyNamesABlobWhoseBytesRotted() async throws {
        for index in 0..<3 { try await send(index, chunk(index)[...], at: 0) }
        #expect(try await storage.commit(manifest) == .committed)
        let path = storage.root + "/objects/\(manifest.sha256.prefix(2))/\(manifest.sha256)"
        chmod(path, 0o600)
        let handle = FileHandle(forUpdatingAtPath: path)!
        try handle.seek(toOffset: 77)
        handle.write(Data([0]))
        try handle.close()
        #expect(try await storage.verifyAll().damaged == [manifest.sha256])
    }

    @Test func uploadsNobodyTouchedExpireAndCompleteBlobsNever() async throws {
        try await send(0, chunk(0)[...], at: 0)
        #expect(try await storage.expireUploads(untouchedSince: Date().timeIntervalSince1970 - 3600).isEmpty, "touched just now")
        #expect(try await storage.expireUploads(untouchedSince: Date().timeIntervalSince1970 + 10) == [manifest.sha256])
        #expect(try await storage.state(of: manifest) == .absent)
        for index in 0..<3 { try await send(index, chunk(index)[...], at: 0) }
        #expect(try await storage.commit(manifest) == .committed)
        #expect(try await storage.expireUploads(untouchedSince: Date().timeIntervalSince1970 + 10).isEmpty)
        #expect(try await storage.state(of: manifest) == .complete)
    }

    /// The right file under a manifest with invented chunk hashes, every chunk's request dropped
    /// before its hash was checked: nothing counts as received, so it is never committed (and never
    /// gets a receipt that fetches would then fail against).
    @Test func chunksWhoseHashWasNeverCheckedDoNotCount() async throws {
        var invented = manifest
        invented.chunks = Array(repeating: String(repeating: "e", count: 64), count: manifest.chunkCount)
        try await storage.beginUpload(invented)
        for index in 0..<3 {
            let upload = try await storage.openChunk(index, of: invented, at: 0)
            try chunk(index).withUnsafeBytes { try upload.append($0) }
            await upload.abandon()
        }
        #expect(try await storage.commit(invented) == .incomplete(missing: [0, 1, 2]))
        let resent = try await storage.openChunk(0, of: invented, at: 0)
        await #expect(throws: BlobError.self, "checked from the central node's copy when resent") {
            try chunk(0).withUnsafeBytes { try resent.append($0) }
            try await resent.finish()
        }
        #expect(try await storage.state(of: invented) == .partial(missing: [0, 1, 2], received: [:]))
    }

    @Test func aManifestThatLiesAboutTheWholeHashIsRefusedAtCommit() async throws {
        var lying = manifest
        lying.sha256 = String(repeating: "0", count: 64)
        try await storage.beginUpload(lying)
        for index in 0..<3 {
            let upload = try await storage.openChunk(index, of: lying, at: 0)
            try chunk(index).withUnsafeBytes { try upload.append($0) }
            try await upload.finish()
        }
        await #expect(throws: BlobError.self) { try await storage.commit(lying) }
        #expect(try await storage.state(of: lying) == .absent)
    }
}
