import FieldSyncBlobs
import FieldSyncCore
import FieldSyncProtocol
import Foundation
import GRDB

/// One attachment a revision referenced: its hash and the `content` it gave.
public struct AttachmentReference: Sendable, Hashable {
    public var sha256: String
    public var content: AttachmentContent

    public init(sha256: String, content: AttachmentContent) {
        self.sha256 = sha256
        self.content = content
    }
}

/// How much of an attachment's bytes this replica holds.
public enum LocalAttachmentState: String, Sendable {
    case complete, partial, absent
}

/// Attachments on a replica (spec 19): references learned from revisions, manifests, the chunks
/// kept in ``ReplicaBlobStore`` and the central node's receipts. Every write is one transaction.
extension ReplicaStore {
    static let referenceInsert = """
        INSERT OR IGNORE INTO attachment_reference (sha, manifest, content)
        VALUES (keyed(?1), keyed(?2), seal(?3, 'attachment_reference.content/' || keyed(?1) || '/' || keyed(?2)))
        """

    /// Remembers every attachment content a revision writes (called for each revision appended to
    /// the log), so that the bytes it names are known to be referenced by a signed revision.
    static func rememberAttachmentReferences(_ db: Database, of revision: Revision) throws {
        for operation in revision.operations {
            guard case .set(let path, let value) = operation, path.hasPrefix("attachments."), path.hasSuffix(".content"),
                let content = AttachmentContent(json: value)
            else { continue }
            let sha = String(path.dropFirst("attachments.".count).dropLast(".content".count))
            guard Revision.isHash(sha) else { continue }
            try db.cachedStatement(sql: referenceInsert).execute(arguments: [
                sha, content.manifest, AttachmentReference(sha256: sha, content: content).json.canonicalText,
            ])
        }
    }

    /// The contents stored revisions gave `sha256` (empty: none references it).
    public func attachmentReferences(_ sha256: String) throws -> [AttachmentContent] {
        try read { db in try Self.attachmentReferences(db, sha256) }
    }

    static func attachmentReferences(_ db: Database, _ sha256: String) throws -> [AttachmentContent] {
        try String.fetchAll(
            db,
            sql:
                "SELECT unseal(content, 'attachment_reference.content/' || sha || '/' || manifest) FROM attachment_reference WHERE sha = keyed(?)",
            arguments: [sha256]
        ).compactMap { text in (try? JSONValue(parsing: text)).flatMap(AttachmentReference.init(json:))?.content }
    }

    /// Every attachment any stored revision referenced.
    public func allAttachmentReferences() throws -> [AttachmentReference] {
        try read { db in
            try String.fetchAll(
                db, sql: "SELECT unseal(content, 'attachment_reference.content/' || sha || '/' || manifest) FROM attachment_reference"
            )
            .compactMap { text in (try? JSONValue(parsing: text)).flatMap(AttachmentReference.init(json:)) }
        }
    }

    // MARK: Manifests

    public func attachmentManifest(hash: String) throws -> AttachmentManifest? {
        try read { db in try Self.attachmentManifest(db, hash: hash) }
    }

    static func attachmentManifest(_ db: Database, hash: String) throws -> AttachmentManifest? {
        guard
            let text = try String.fetchOne(
                db, sql: "SELECT unseal(body, 'attachment_manifest.body/' || hash) FROM attachment_manifest WHERE hash = keyed(?)",
                arguments: [hash])
        else { return nil }
        return try? AttachmentManifest(bytes: Array(text.utf8))
    }

    /// Stores a manifest that a stored revision references (its sha256 and hash as a `content`
    /// names them); throws otherwise, so that only referenced manifests are kept.
    public func storeAttachmentManifest(_ manifest: AttachmentManifest) throws {
        try write { db in try Self.storeAttachmentManifest(db, manifest) }
    }

    static func storeAttachmentManifest(_ db: Database, _ manifest: AttachmentManifest) throws {
        let references = try attachmentReferences(db, manifest.sha256)
        guard references.contains(manifest.content) else {
            throw StoreError(.invalid, "no revision here references attachment \(manifest.sha256) with manifest \(manifest.hash)")
        }
        try db.execute(
            sql:
                "INSERT OR IGNORE INTO attachment_manifest (hash, body) VALUES (keyed(?1), seal(?2, 'attachment_manifest.body/' || keyed(?1)))",
            arguments: [manifest.hash, String(decoding: manifest.canonicalBytes, as: UTF8.self)])
    }

    // MARK: Local copies

    /// Records that this replica keeps (some of) the chunks of `manifest`.
    public func markLocal(_ manifest: AttachmentManifest, now: Int64) throws {
        try write { db in try Self.markLocal(db, manifest, now: now) }
    }

    static func markLocal(_ db: Database, _ manifest: AttachmentManifest, now: Int64) throws {
        try storeAttachmentManifest(db, manifest)
        try db.execute(
            sql: "INSERT OR IGNORE INTO attachment_local (sha, manifest, added) VALUES (keyed(?), keyed(?), ?)",
            arguments: [manifest.sha256, manifest.hash, now])
    }

    /// The manifests of every attachment this replica keeps chunks of.
    public func localAttachments() throws -> [AttachmentManifest] {
        try read { db in
            try String.fetchAll(
                db,
                sql: """
                    SELECT unseal(m.body, 'attachment_manifest.body/' || m.hash) FROM attachment_local l
                    JOIN attachment_manifest m ON m.hash = l.manifest ORDER BY l.added
                    """
            ).compactMap { try? AttachmentManifest(bytes: Array($0.utf8)) }
        }
    }

    public func localManifest(of sha256: String) throws -> AttachmentManifest? {
        try read { db in
            try String.fetchOne(
                db,
                sql: """
                    SELECT unseal(m.body, 'attachment_manifest.body/' || m.hash) FROM attachment_local l
                    JOIN attachment_manifest m ON m.hash = l.manifest WHERE l.sha = keyed(?)
                    """, arguments: [sha256]
            ).flatMap { try? AttachmentManifest(bytes: Array($0.utf8)) }
        }
    }

    /// Whether all, some or none of an attachment's chunks are here.
    public func localState(of sha256: String) throws -> LocalAttachmentState {
        guard let manifest = try localManifest(of: sha256) else { return .absent }
        let held = blobs.heldChunks(of: manifest)
        if held.allSatisfy({ $0 }) { return .complete }
        return held.contains(true) ? .partial : .absent
    }

    /// Deletes this replica's copy of an attachment (after a verified receipt); returns the bytes freed.
    public func dropLocal(_ manifest: AttachmentManifest) throws -> Int64 {
        try write { db in
            try db.execute(sql: "DELETE FROM attachment_local WHERE sha = keyed(?)", arguments: [manifest.sha256])
        }
        return blobs.remove(manifest)
    }

    // MARK: Receipts

    public func attachmentReceipt(_ sha256: String) throws -> AttachmentReceipt? {
        try read { db in try Self.attachmentReceipt(db, sha256) }
    }

    static func attachmentReceipt(_ db: Database, _ sha256: String) throws -> AttachmentReceipt? {
        try String.fetchOne(
            db, sql: "SELECT unseal(body, 'attachment_receipt.body/' || sha) FROM attachment_receipt WHERE sha = keyed(?)",
            arguments: [sha256]
        ).flatMap { text in (try? JSONValue(parsing: text)).flatMap { try? AttachmentReceipt(json: $0) } }
    }

    /// Keeps a receipt from the central node (replacing an older one).
    public func storeAttachmentReceipt(_ receipt: AttachmentReceipt) throws {
        try write { db in
            try db.execute(
                sql: """
                    INSERT INTO attachment_receipt (sha, body) VALUES (keyed(?1), seal(?2, 'attachment_receipt.body/' || keyed(?1)))
                    ON CONFLICT (sha) DO UPDATE SET body = excluded.body
                    """, arguments: [receipt.sha256, receipt.json.canonicalText])
        }
    }

    /// `verified` when the receipt is signed by the pinned central node key and names exactly
    /// `content`; `invalid` when it is not; `none` without one.
    public func receiptStatus(_ sha256: String, _ content: AttachmentContent) throws -> String {
        guard let receipt = try attachmentReceipt(sha256) else { return "none" }
        guard let key = try enrolment()?.serverKey else { return "invalid" }
        return receipt.vouches(for: sha256, content, issuerKey: key) ? "verified" : "invalid"
    }

    // MARK: Attaching

    /// What attaching a file did.
    public enum AttachOutcome: Sendable {
        case attached(Revision)
        /// The record already references these bytes with these details: nothing was written.
        case alreadyAttached
    }

    /// Attaches a file whose chunks are staged: in one transaction, writes the signed revision
    /// that references it (unless the record already does, with the same details) and records the
    /// local copy. The staged chunks are moved into place first, so a committed reference always
    /// has its bytes.
    public func attach(
        record id: RecordID, manifest: AttachmentManifest, staged: StagedChunks, fields: [String: JSONValue], now: Int64
    ) throws -> AttachOutcome {
        try staged.adopt(manifest)
        let prefix = "attachments.\(manifest.sha256)"
        var wrote: Revision?
        try write { db in
            guard let current = try Self.loadState(db, id), !current.isDeleted else {
                throw StoreError(.notFound, "no record \(id.rawValue)")
            }
            var entry = fields
            entry["content"] = manifest.content.json
            let unchanged =
                current.value(at: prefix) == .bool(true)
                && entry.allSatisfy { key, value in current.value(at: "\(prefix).\(key)") == value }
            if !unchanged {
                let operations = try LocalEdit.operations(
                    for: [.set(path: "attachments", value: .object([manifest.sha256: .object(entry)]))], current: current,
                    newEntryID: { manifest.sha256 })
                wrote = try Self.commitLocal(db, records: [id], now: now) { _, _ in (.put, operations, nil) }.first
            }
            try Self.markLocal(db, manifest, now: now)
        }
        return wrote.map(AttachOutcome.attached) ?? .alreadyAttached
    }
}

extension AttachmentReference {
    /// `{"sha256", "size", "chunk_size", "manifest"}`, the sealed form of a reference row.
    var json: JSONValue {
        var o = content.json.objectValue!
        o["sha256"] = .string(sha256)
        return .object(o)
    }

    init?(json: JSONValue) {
        guard var o = json.objectValue, let sha = o.removeValue(forKey: "sha256")?.stringValue,
            let content = AttachmentContent(json: .object(o))
        else { return nil }
        self.init(sha256: sha, content: content)
    }
}
