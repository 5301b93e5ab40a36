import FieldSyncBlobs
import FieldSyncCore
import FieldSyncStore
import Foundation

/// Small helpers that make incident revisions in test replicas.
public enum Fixtures {
    /// Creates a record with the given fields on `store` and returns its id.
    @discardableResult
    public static func addIncident(_ store: ReplicaStore, title: String, _ changes: [FieldChange] = [], now: Int64 = 1_741_340_000_000)
        throws -> RecordID
    {
        let id = RecordID.generate(millisecondsSince1970: now)
        _ = try store.commitLocal(record: id, now: now) { current in
            (
                .put,
                try LocalEdit.operations(
                    for: [.set(path: "title", value: .string(title))] + changes, current: current, newEntryID: { "e1" }), nil
            )
        }
        return id
    }

    /// Applies `changes` to an existing record as a local edit.
    public static func edit(_ store: ReplicaStore, _ id: RecordID, _ changes: [FieldChange], now: Int64 = 1_741_340_100_000) throws {
        _ = try store.commitLocal(record: id, now: now) { current in
            (.put, try LocalEdit.operations(for: changes, current: current, newEntryID: { "e2" }), nil)
        }
    }

    /// The canonical state of every record, for byte-for-byte convergence checks.
    public static func canonicalState(_ store: ReplicaStore) throws -> String {
        try store.records(includeDeleted: true).map { $0.json.canonicalText }.joined(separator: "\n")
    }
}

extension Fixtures {
    /// Attaches `bytes` (written to a file in `folder`) to record `id`, as `fieldsync attach` does.
    @discardableResult
    public static func attach(_ store: ReplicaStore, _ id: RecordID, bytes: [UInt8], name: String = "photo.jpg", in folder: String) throws
        -> AttachmentManifest
    {
        let path = (folder as NSString).appendingPathComponent("\(UUID().uuidString)-\(name)")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let staged = try store.blobs.staging()
        let size = Int64(bytes.count)
        let manifest = try FileDigester.digest(file: path) { index, chunk, hash in
            try staged.write(index, chunk, hash: hash, chunkSize: AttachmentContent.chunkSize(forSize: size))
        }
        _ = try store.attach(
            record: id, manifest: manifest, staged: staged, fields: ["name": .string(name), "media_type": "image/jpeg"],
            now: Int64(Date().timeIntervalSince1970 * 1000))
        return manifest
    }

    /// Bytes that differ for each seed.
    public static func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed &+ 0x9E37_79B9_7F4A_7C15
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
    }
}
