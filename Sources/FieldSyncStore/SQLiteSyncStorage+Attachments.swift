import FieldSyncBlobs
import FieldSyncCore
import FieldSyncProtocol
import Foundation
import GRDB

/// The central node's attachment metadata in its SQLite store (spec 19): references, manifests,
/// uploads under way and the receipts it signed. The bytes are in a ``BlobStorage``.
extension SQLiteSyncStorage: AttachmentStorage {
    public func attachmentReferences(_ sha256: String) async throws -> [AttachmentContent] {
        try await replica.asyncRead { db in try ReplicaStore.attachmentReferences(db, sha256) }
    }

    public func attachmentManifest(hash: String) async throws -> [UInt8]? {
        try await replica.asyncRead { db in try ReplicaStore.attachmentManifest(db, hash: hash)?.canonicalBytes }
    }

    public func storeAttachmentManifest(hash: String, bytes: [UInt8]) async throws {
        let manifest = try AttachmentManifest(bytes: bytes)
        guard manifest.hash == hash else { throw ProtocolError(.malformed, "the manifest's SHA-256 is \(manifest.hash), not \(hash)") }
        try await replica.asyncWrite { db in try ReplicaStore.storeAttachmentManifest(db, manifest) }
    }

    public func attachmentReceipt(_ sha256: String) async throws -> AttachmentReceipt? {
        try await replica.asyncRead { db in try ReplicaStore.attachmentReceipt(db, sha256) }
    }

    public func beginAttachmentUpload(_ sha256: String, manifest: String, size: Int64, account: String, quota: Int64?, now: Int64)
        async throws
    {
        try await replica.asyncWrite { db in
            if let current = try String.fetchOne(db, sql: "SELECT manifest FROM attachment_upload WHERE sha = ?", arguments: [sha256]) {
                guard current == manifest else {
                    throw ProtocolError.uploadUnderWay
                }
                return
            }
            if let quota {
                // Committed bytes the account sent first, and its uploads under way.
                let used =
                    try Int64.fetchOne(
                        db,
                        sql: """
                            SELECT (SELECT COALESCE(SUM(size), 0) FROM attachment_receipt WHERE account = ?1)
                                 + (SELECT COALESCE(SUM(size), 0) FROM attachment_upload WHERE account = ?1)
                            """, arguments: [account]) ?? 0
                guard used + size <= quota else {
                    throw ProtocolError.quotaExceeded(size: size, account: account, used: used, quota: quota)
                }
            }
            try db.execute(
                sql: "INSERT INTO attachment_upload (sha, manifest, account, size, started) VALUES (?, ?, ?, ?, ?)",
                arguments: [sha256, manifest, account, size, now])
        }
    }

    public func issueAttachmentReceipt(sha256: String, size: Int64, manifest: String, node: NodeID, account: String, now: Int64)
        async throws -> AttachmentReceipt
    {
        try await replica.asyncWrite { db in
            // The first receipt stands: whoever asks later is told the bytes arrived then.
            if let existing = try ReplicaStore.attachmentReceipt(db, sha256) {
                // An upload row a racing manifest request left: the bytes are counted by the receipt.
                try db.execute(sql: "DELETE FROM attachment_upload WHERE sha = ?", arguments: [sha256])
                return existing
            }
            let receipt = try AttachmentReceipt.issue(
                sha256: sha256, size: size, manifest: manifest, received: now, node: node, account: account, by: ReplicaStore.deviceKey(db))
            try db.execute(
                sql:
                    "INSERT INTO attachment_receipt (sha, body, account, size) VALUES (keyed(?1), seal(?2, 'attachment_receipt.body/' || keyed(?1)), ?3, ?4)",
                arguments: [sha256, receipt.json.canonicalText, account, size])
            try db.execute(sql: "DELETE FROM attachment_upload WHERE sha = ?", arguments: [sha256])
            return receipt
        }
    }

    public func forgetAttachmentUploads(_ sha256s: [String]) async throws {
        guard !sha256s.isEmpty else { return }
        try await replica.asyncWrite { db in
            for sha in sha256s { try db.execute(sql: "DELETE FROM attachment_upload WHERE sha = ?", arguments: [sha]) }
        }
    }
}
