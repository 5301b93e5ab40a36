import Crypto
import FieldSyncBlobs
import FieldSyncCore
import FieldSyncTestSupport
import Foundation
import Testing

/// Manifests, chunking and hashing (spec 19.2).
@Suite struct AttachmentManifestTests {
    let dir: TemporaryDirectory
    init() throws { dir = try TemporaryDirectory("manifest") }

    /// Deterministic bytes: byte i is (i * 7 + 3) mod 256, as in Protocol/vectors/attachments.json.
    static func pattern(_ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) } }

    func file(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = dir.file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func chunkSizeIsOneMebibyteUntilSixteenGibibytesThenDoubles() {
        #expect(AttachmentContent.chunkSize(forSize: 0) == 1 << 20)
        #expect(AttachmentContent.chunkSize(forSize: 4 << 30) == 1 << 20)
        #expect(AttachmentContent.chunkSize(forSize: 16 << 30) == 1 << 20)
        #expect(AttachmentContent.chunkSize(forSize: (16 << 30) + 1) == 2 << 20)
        #expect(AttachmentContent.chunkSize(forSize: 1 << 50) == 8 << 20, "never above the 8 MiB readers accept")
        #expect(AttachmentContent.chunkCount(size: 0, chunkSize: 1 << 20) == 1, "an empty file has one empty chunk")
        #expect(AttachmentContent.chunkCount(size: (1 << 20) + 1, chunkSize: 1 << 20) == 2)
    }

    @Test func theDigestHashesTheWholeFileAndEveryChunkInOnePass() throws {
        let bytes = Self.pattern((5 << 19) + 5)  // 2.5 MiB and 5 bytes: three chunks
        var seen: [(Int, Int, String)] = []
        let manifest = try FileDigester.digest(file: try file("a.bin", bytes)) { index, chunk, hash in
            seen.append((index, chunk.count, hash))
        }
        #expect(manifest.sha256 == ContentHash.hex(of: bytes))
        #expect(manifest.size == Int64(bytes.count))
        #expect(manifest.chunkSize == 1 << 20)
        #expect(manifest.chunks.count == 3)
        #expect(seen.map(\.1) == [1 << 20, 1 << 20, (1 << 19) + 5])
        #expect(manifest.chunks[2] == ContentHash.hex(of: bytes[(2 << 20)...]))
        #expect(seen.map(\.2) == manifest.chunks)
        // The manifest round-trips through its canonical bytes, and its hash is of those bytes.
        let parsed = try AttachmentManifest(bytes: manifest.canonicalBytes)
        #expect(parsed == manifest)
        #expect(manifest.hash == ContentHash.hex(of: manifest.canonicalBytes))
        #expect(manifest.content == AttachmentContent(size: manifest.size, chunkSize: 1 << 20, manifest: manifest.hash))
    }

    @Test func anEmptyFileHasOneEmptyChunk() throws {
        let manifest = try FileDigester.digest(file: try file("empty", []))
        #expect(manifest.chunks == [ContentHash.hex(of: [UInt8]())])
        #expect(manifest.size == 0)
        #expect(manifest.length(ofChunk: 0) == 0)
    }

    @Test func manifestsThatAreNotCanonicalOrDoNotAddUpAreRefused() throws {
        let manifest = try FileDigester.digest(file: try file("b.bin", Self.pattern(3000)))
        var json = manifest.json.objectValue!
        // Pretty-printed: the same members, another address, so refused.
        #expect(throws: ManifestError.self) { try AttachmentManifest(bytes: Array(manifest.json.prettyText().utf8)) }
        json["size"] = .int(5 << 20)
        #expect(throws: ManifestError.self) { try AttachmentManifest(bytes: JSONValue.object(json).canonicalBytes) }
        json = manifest.json.objectValue!
        json["chunk_size"] = .int(3 << 20)
        #expect(throws: ManifestError.self, "a chunk size that is not a power of two") {
            try AttachmentManifest(bytes: JSONValue.object(json).canonicalBytes)
        }
        json = manifest.json.objectValue!
        json["chunk_size"] = .int(16 << 20)
        #expect(throws: ManifestError.self, "above the 8 MiB readers accept") {
            try AttachmentManifest(bytes: JSONValue.object(json).canonicalBytes)
        }
        json = manifest.json.objectValue!
        json["extra"] = true
        #expect(throws: ManifestError.self) { try AttachmentManifest(bytes: JSONValue.object(json).canonicalBytes) }
        #expect(throws: ManifestError.self) { try AttachmentManifest(bytes: Array("not json".utf8)) }
    }

    @Test func aFileThatChangesWhileItIsReadIsRefused() throws {
        let path = try file("growing", Self.pattern(3 << 20))
        var grew = false
        #expect(throws: BlobError.self) {
            try FileDigester.digest(file: path) { index, _, _ in
                if index == 0, !grew {
                    grew = true
                    let handle = FileHandle(forWritingAtPath: path)!
                    handle.seekToEndOfFile()
                    handle.write(Data([1, 2, 3]))
                    try handle.close()
                }
            }
        }
        #expect(throws: BlobError.self, "a folder is not a file") { try FileDigester.digest(file: dir.path) }
    }

    @Test func theContentRegisterValueIsCheckedByTheSchema() throws {
        let content = AttachmentContent(size: 10, chunkSize: 1 << 20, manifest: String(repeating: "a", count: 64))
        let sha = String(repeating: "b", count: 64)
        try IncidentSchema.validate(.set(path: "attachments.\(sha).content", value: content.json))
        try IncidentSchema.validate(.set(path: "attachments.\(sha).media_type", value: "image/jpeg"))
        #expect(throws: ValidationError.self, "the entry id must be a SHA-256") {
            try IncidentSchema.validate(.set(path: "attachments.photo1.content", value: content.json))
        }
        #expect(throws: ValidationError.self) {
            try IncidentSchema.validate(.set(path: "attachments.\(sha).content", value: ["size": 10, "chunk_size": 1000, "manifest": "x"]))
        }
        #expect(throws: ValidationError.self) { try IncidentSchema.validate(.set(path: "attachments.\(sha).media_type", value: "jpeg")) }
        #expect(throws: ValidationError.self) { try IncidentSchema.validate(.set(path: "attachments.\(sha).captured", value: "yesterday")) }
    }
}
