import FieldSyncBlobs
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncTestSupport
import Foundation
import Testing

/// `Protocol/vectors/attachments.json`, written by an independent Python implementation
/// (`make-attachment-vectors.py`): manifests, content values, a receipt and a sidecar part, byte
/// for byte.
@Suite struct AttachmentVectorTests {
    let vector: JSONValue
    let dir: TemporaryDirectory

    init() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Protocol/vectors/attachments.json")
        vector = try JSONValue(parsing: Array(try Data(contentsOf: url)))
        dir = try TemporaryDirectory("attachment-vectors")
    }

    @Test func manifestsAndContentValuesMatchTheOtherImplementation() throws {
        let files = try #require(vector["files"]?.arrayValue)
        #expect(files.count == 2)
        for (index, file) in files.enumerated() {
            let size = try #require(file["size"]?.intValue)
            let bytes = AttachmentManifestTests.pattern(Int(size))
            let path = dir.file("file-\(index)")
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let manifest = try FileDigester.digest(file: path)
            #expect(manifest.sha256 == file["sha256"]?.stringValue)
            #expect(manifest.chunkSize == file["chunk_size"]?.intValue.map { Int($0) })
            #expect(manifest.chunks == file["chunks"]?.arrayValue?.compactMap(\.stringValue))
            #expect(String(decoding: manifest.canonicalBytes, as: UTF8.self) == file["manifest_canonical"]?.stringValue)
            #expect(manifest.hash == file["manifest_sha256"]?.stringValue)
            #expect(manifest.content.json.canonicalText == file["content_canonical"]?.stringValue)
            #expect(file["content_path"]?.stringValue == "attachments.\(manifest.sha256).content")
        }
        for rule in try #require(vector["chunk_size_rule"]?.arrayValue) {
            let size = try #require(rule["size"]?.intValue)
            let chunk = AttachmentContent.chunkSize(forSize: size)
            #expect(Int64(chunk) == rule["chunk_size"]?.intValue, "size \(size)")
            #expect(Int64(AttachmentContent.chunkCount(size: size, chunkSize: chunk)) == rule["chunk_count"]?.intValue)
        }
    }

    @Test func theReceiptIsSignedAsTheOtherImplementationSignsIt() throws {
        let seed = try #require(vector["server_key_seed"]?.stringValue)
        let key = try DeviceKey(
            rawRepresentation: stride(from: 0, to: seed.count, by: 2).map { offset in
                let start = seed.index(seed.startIndex, offsetBy: offset)
                return UInt8(seed[start..<seed.index(start, offsetBy: 2)], radix: 16)!
            })
        #expect(key.publicKeyBase64 == vector["server_key"]?.stringValue)
        #expect(CentralNodeKey.fingerprint(ofPublicKey: key.publicKeyBase64) == vector["server_fingerprint"]?.stringValue)
        let expected = try AttachmentReceipt(json: try #require(vector["receipt"]))
        let issued = try AttachmentReceipt.issue(
            sha256: expected.sha256, size: expected.size, manifest: expected.manifest, received: expected.received, node: expected.node,
            account: expected.account, by: key)
        #expect(issued == expected)
        #expect(String(decoding: issued.signedBytes, as: UTF8.self) == vector["signed_text"]?.stringValue)
        #expect(expected.isIssued(by: key.publicKeyBase64))
        let tampered = try AttachmentReceipt(json: try #require(vector["tampered_receipt"]))
        #expect(!tampered.isIssued(by: key.publicKeyBase64))
    }

    @Test func theSidecarPartReadsAsWritten() throws {
        let base64 = try #require(vector["sidecar_part"]?["base64"]?.stringValue)
        let path = dir.file("part-0001.fsblobs")
        try #require(Data(base64Encoded: base64)).write(to: URL(fileURLWithPath: path))
        var records: [BlobParts.Record] = []
        try BlobParts.read(path, key: nil) { records.append($0) }
        #expect(records.count == 2)
        let empty = try #require(vector["files"]?.arrayValue?[1])
        if case .manifest(let bytes) = records[0] {
            #expect(String(decoding: bytes, as: UTF8.self) == empty["manifest_canonical"]?.stringValue)
        } else {
            Issue.record("the first record is the manifest")
        }
        if case .chunk(let sha, let index, let bytes) = records[1] {
            #expect(sha == empty["sha256"]?.stringValue)
            #expect(index == 0)
            #expect(bytes.isEmpty)
        } else {
            Issue.record("the second record is the empty chunk")
        }
    }
}
