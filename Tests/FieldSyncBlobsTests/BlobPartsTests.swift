import Crypto
import FieldSyncBlobs
import FieldSyncCore
import FieldSyncTestSupport
import Foundation
import Testing

/// The bundle sidecar's part files (spec 12.6).
@Suite struct BlobPartsTests {
    let dir: TemporaryDirectory
    let bytes = AttachmentManifestTests.pattern((3 << 20) + 17)
    let manifest: AttachmentManifest

    init() throws {
        dir = try TemporaryDirectory("parts")
        let path = dir.file("file")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        manifest = try FileDigester.digest(file: path)
    }

    func write(sealing: (key: SymmetricKey, parameters: [UInt8])?, partBytes: Int64) throws -> String {
        let folder = dir.file("sidecar")
        let writer = try BlobPartWriter(folder: folder, sealing: sealing, maximumPartBytes: partBytes)
        writer.add(manifest: manifest)
        for index in 0..<manifest.chunkCount {
            let start = Int(manifest.offset(ofChunk: index))
            try writer.add(chunk: Array(bytes[start..<start + manifest.length(ofChunk: index)]), index: index, of: manifest)
        }
        try writer.finish()
        return folder
    }

    func readAll(_ folder: String, key: SymmetricKey?) throws -> (manifests: Int, chunks: [Int: [UInt8]]) {
        var manifests = 0
        var chunks: [Int: [UInt8]] = [:]
        for part in BlobParts.parts(in: folder) {
            try BlobParts.read(part, key: key) { record in
                switch record {
                case .manifest(let bytes):
                    #expect((try? AttachmentManifest(bytes: bytes)) == manifest)
                    manifests += 1
                case .chunk(let sha, let index, let payload):
                    #expect(sha == manifest.sha256)
                    chunks[index] = payload
                }
            }
        }
        return (manifests, chunks)
    }

    @Test func everyPartCarriesTheManifestsAndPartsStayUnderTheirLimit() throws {
        let folder = try write(sealing: nil, partBytes: (2 << 20) + 4096)
        let parts = BlobParts.parts(in: folder)
        #expect(parts.count == 2)
        for part in parts {
            let size = try FileManager.default.attributesOfItem(atPath: part)[.size] as! NSNumber
            #expect(size.int64Value <= (2 << 20) + 4096)
        }
        let read = try readAll(folder, key: nil)
        #expect(read.manifests == 2, "each part is self-contained")
        #expect(read.chunks.keys.sorted() == [0, 1, 2, 3])
        #expect(read.chunks.values.reduce(0) { $0 + $1.count } == bytes.count)
    }

    @Test func sealedPartsHideTheBytesAndOpenOnlyWithTheKey() throws {
        let key = SymmetricKey(size: .bits256)
        let folder = try write(sealing: (key, [17, 8, 1] + [UInt8](repeating: 9, count: 32)), partBytes: BlobParts.maximumPartBytes)
        let part = try #require(BlobParts.parts(in: folder).first)
        let raw = [UInt8](try Data(contentsOf: URL(fileURLWithPath: part)))
        #expect(!raw.contains(subsequence: Array(bytes[100..<164])), "no run of the file's bytes is in the part")
        #expect(!raw.contains(subsequence: Array(manifest.sha256.utf8)), "nor its hash")
        #expect(try BlobParts.sealingParameters(of: part) == [17, 8, 1] + [UInt8](repeating: 9, count: 32))
        #expect(try readAll(folder, key: key).chunks.count == 4)
        #expect(throws: BlobError.self) { try readAll(folder, key: SymmetricKey(size: .bits256)) }
        #expect(throws: BlobError.self) { try readAll(folder, key: nil) }
    }

    @Test func aTruncatedPartGivesWhatPrecedesTheCutThenAnError() throws {
        let folder = try write(sealing: nil, partBytes: BlobParts.maximumPartBytes)
        let part = try #require(BlobParts.parts(in: folder).first)
        let handle = FileHandle(forUpdatingAtPath: part)!
        try handle.truncate(atOffset: UInt64((2 << 20) + 10_000))
        try handle.close()
        var chunks: [Int] = []
        #expect(throws: BlobError.self) {
            try BlobParts.read(part, key: nil) { record in
                if case .chunk(_, let index, _) = record { chunks.append(index) }
            }
        }
        #expect(chunks == [0, 1], "the whole records before the cut (the third is cut)")
    }
}
