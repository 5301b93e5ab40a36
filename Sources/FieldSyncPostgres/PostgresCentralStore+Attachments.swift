import FieldSyncBlobs
import FieldSyncCore
import FieldSyncProtocol
import PostgresNIO

/// Attachment metadata in the shared database (spec 19): references, manifests, uploads under way
/// and the receipts the central node signed. The bytes are in a ``BlobStorage``.
extension PostgresCentralStore: AttachmentStorage {
    public func attachmentReferences(_ sha256: String) async throws -> [AttachmentContent] {
        try await read { connection in
            var contents: [AttachmentContent] = []
            for try await text in try await connection.query(
                "SELECT content FROM attachment_reference WHERE sha = \(sha256) ORDER BY manifest", logger: logger
            ).decode(String.self) {
                if let content = (try? JSONValue(parsing: text)).flatMap(AttachmentContent.init(json:)) { contents.append(content) }
            }
            return contents
        }
    }

    public func attachmentManifest(hash: String) async throws -> [UInt8]? {
        try await read { connection in
            for try await body in try await connection.query("SELECT body FROM attachment_manifest WHERE hash = \(hash)", logger: logger)
                .decode(ByteBuffer.self)
            {
                return Array(buffer: body)
            }
            return nil
        }
    }

    public func storeAttachmentManifest(hash: String, bytes: [UInt8]) async throws {
        let manifest = try AttachmentManifest(bytes: bytes)
        guard manifest.hash == hash else { throw ProtocolError(.malformed, "the manifest's SHA-256 is \(manifest.hash), not \(hash)") }
        let references = try await attachmentReferences(manifest.sha256)
        guard references.contains(manifest.content) else {
            throw ProtocolError(.unreferenced, "no stored revision references attachment \(manifest.sha256) with manifest \(manifest.hash)")
        }
        try await write { connection in
            try await connection.query(
                """
                INSERT INTO attachment_manifest (hash, body) VALUES (\(hash), \(ByteBuffer(bytes: manifest.canonicalBytes)))
                ON CONFLICT (hash) DO NOTHING
                """, logger: logger)
        }
    }

    public func attachmentReceipt(_ sha256: String) async throws -> AttachmentReceipt? {
        try await read { connection in try await Self.attachmentReceipt(connection, sha256, logger: logger) }
    }

    static func attachmentReceipt(_ connection: PostgresConnection, _ sha256: String, logger: Logger) async throws -> AttachmentReceipt? {
        for try await text in try await connection.query("SELECT body FROM attachment_receipt WHERE sha = \(sha256)", logger: logger)
            .decode(String.self)
        {
            return (try? JSONValue(parsing: text)).flatMap { try? AttachmentReceipt(json: $0) }
        }
        return nil
    }

    public func beginAttachmentUpload(_ sha256: String, manifest: String, size: Int64, account: String, quota: Int64?, now: Int64)
        async throws
    {
        try await write { connection in
            for try await current in try await connection.query(
                "SELECT manifest FROM attachment_upload WHERE sha = \(sha256)", logger: logger
            ).decode(String.self) {
                guard current == manifest else {
                    throw ProtocolError.uploadUnderWay
                }
                return
            }
            if let quota {
                var used: Int64 = 0
                for try await value in try await connection.query(
                    """
                    SELECT (SELECT COALESCE(SUM(size), 0) FROM attachment_receipt WHERE account = \(account))::bigint
                         + (SELECT COALESCE(SUM(size), 0) FROM attachment_upload WHERE account = \(account))::bigint
                    """, logger: logger
                ).decode(Int64.self) {
                    used = value
                }
                guard used + size <= quota else {
                    throw ProtocolError.quotaExceeded(size: size, account: account, used: used, quota: quota)
                }
            }
            try await connection.query(
                """
                INSERT INTO attachment_upload (sha, manifest, account, size, started)
                VALUES (\(sha256), \(manifest), \(account), \(size), \(now))
                """, logger: logger)
        }
    }

    public func issueAttachmentReceipt(sha256: String, size: Int64, manifest: String, node: NodeID, account: String, now: Int64)
        async throws -> AttachmentReceipt
    {
        let key = self.key
        return try await write { connection in
            // The first receipt stands: whoever asks later is told the bytes arrived then.
            if let existing = try await Self.attachmentReceipt(connection, sha256, logger: logger) {
                try await connection.query("DELETE FROM attachment_upload WHERE sha = \(sha256)", logger: logger)
                return existing
            }
            let receipt = try AttachmentReceipt.issue(
                sha256: sha256, size: size, manifest: manifest, received: now, node: node, account: account, by: key)
            try await connection.query(
                """
                INSERT INTO attachment_receipt (sha, body, account, size)
                VALUES (\(sha256), \(receipt.json.canonicalText), \(account), \(size))
                """, logger: logger)
            try await connection.query("DELETE FROM attachment_upload WHERE sha = \(sha256)", logger: logger)
            return receipt
        }
    }

    public func forgetAttachmentUploads(_ sha256s: [String]) async throws {
        guard !sha256s.isEmpty else { return }
        try await unlockedWrite { connection in
            try await connection.query("DELETE FROM attachment_upload WHERE sha = ANY(\(sha256s)::text[])", logger: logger)
        }
    }
}
