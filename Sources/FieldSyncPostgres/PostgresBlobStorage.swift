import Crypto
import FieldSyncBlobs
import FieldSyncCore
import Foundation
import Logging
import PostgresNIO

/// Attachment bytes in the central node's PostgreSQL database, as chunk rows, so that a cluster of
/// `serve` instances needs nothing but the database (spec 19.5). Complete blobs are write-once
/// rows of `blob_chunk`; an upload's chunks are rows of `blob_upload_chunk` that grow as bytes
/// arrive, each marked verified once its last byte came and its hash matched the manifest.
///
/// Chunk writes take no advisory lock: two requests for one chunk (a client that reconnected) are
/// settled by the row itself, the longer write winning and nothing shrinking.
public struct PostgresBlobStorage: BlobStorage {
    let client: PostgresClient
    let logger: Logger
    let url: PostgresURL

    public init(store: PostgresCentralStore) {
        client = store.client
        logger = store.logger
        url = store.url
    }

    @discardableResult
    func run<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        do { return try await client.withConnection { connection in try await body(connection) } } catch {
            throw Self.mapped(error, url: url)
        }
    }

    static func mapped(_ error: any Error, url: PostgresURL) -> any Error {
        if error is BlobError || error is CancellationError { return error }
        return BlobError("attachment bytes in \(url): \(PostgresCentralStore.mapped(error, url: url))")
    }

    static func now() -> Double { Date().timeIntervalSince1970 }

    func hasBlob(_ sha: String, _ connection: PostgresConnection) async throws -> Int64? {
        for try await size in try await connection.query("SELECT size FROM blob WHERE sha = \(sha)", logger: logger).decode(Int64.self) {
            return size
        }
        return nil
    }

    func uploadManifest(_ sha: String, _ connection: PostgresConnection) async throws -> String? {
        for try await hash in try await connection.query("SELECT manifest FROM blob_upload WHERE sha = \(sha)", logger: logger).decode(
            String.self)
        {
            return hash
        }
        return nil
    }

    /// Each chunk row's byte count and whether its hash was checked.
    func progress(_ sha: String, _ connection: PostgresConnection) async throws -> [Int: (held: Int, verified: Bool)] {
        var chunks: [Int: (held: Int, verified: Bool)] = [:]
        for try await (index, held, verified) in try await connection.query(
            "SELECT index, length(bytes), verified FROM blob_upload_chunk WHERE sha = \(sha)", logger: logger
        ).decode((Int, Int, Bool).self) {
            chunks[index] = (held, verified)
        }
        return chunks
    }

    public func state(of manifest: AttachmentManifest) async throws -> BlobState {
        try await run { connection in
            if try await hasBlob(manifest.sha256, connection) != nil { return .complete }
            guard try await uploadManifest(manifest.sha256, connection) == manifest.hash else { return .absent }
            let chunks = try await progress(manifest.sha256, connection)
            var missing: [Int] = []
            var received: [Int: Int] = [:]
            for index in 0..<manifest.chunkCount {
                let chunk = chunks[index]
                if chunk?.verified == true && chunk?.held == manifest.length(ofChunk: index) { continue }
                missing.append(index)
                if let held = chunk?.held, held > 0, held < manifest.length(ofChunk: index) { received[index] = held }
            }
            return .partial(missing: missing, received: received)
        }
    }

    public func beginUpload(_ manifest: AttachmentManifest) async throws {
        try await run { connection in
            if try await hasBlob(manifest.sha256, connection) != nil { return }
            try await connection.query(
                "INSERT INTO blob_upload (sha, manifest, touched) VALUES (\(manifest.sha256), \(manifest.hash), \(Self.now())) ON CONFLICT DO NOTHING",
                logger: logger)
            guard try await uploadManifest(manifest.sha256, connection) == manifest.hash else {
                throw BlobError.uploadUnderWay
            }
        }
    }

    public func openChunk(_ index: Int, of manifest: AttachmentManifest, at offset: Int) async throws -> any ChunkUpload {
        let sha = manifest.sha256
        guard (0..<manifest.chunkCount).contains(index) else { throw BlobError(.notFound, "chunk \(index) is not in the manifest") }
        return try await run { connection in
            guard try await hasBlob(sha, connection) == nil else {
                throw BlobError(.offset(received: manifest.length(ofChunk: index)), "the central node already holds this attachment")
            }
            switch try await uploadManifest(sha, connection) {
            case nil:
                throw BlobError(
                    .offset(received: 0), "no upload of \(sha) is under way (it expired, or never started): send its manifest again")
            case manifest.hash?: break
            default:
                throw BlobError.uploadUnderWay
            }
            var prefix: [UInt8] = []
            for try await bytes in try await connection.query(
                "SELECT bytes FROM blob_upload_chunk WHERE sha = \(sha) AND index = \(index)", logger: logger
            ).decode(ByteBuffer.self) {
                prefix = Array(buffer: bytes)
            }
            // A resend from an older offset is fine: the bytes already held are skipped.
            guard offset <= prefix.count else {
                throw BlobError(
                    .offset(received: prefix.count), "chunk \(index): \(prefix.count) of its bytes arrived so far, fewer than \(offset)")
            }
            return PostgresChunkUpload(storage: self, manifest: manifest, index: index, prefix: prefix, skipping: prefix.count - offset)
        }
    }

    /// Keeps `bytes` as what arrived of a chunk, unless a longer write for it came meanwhile.
    func saveChunk(_ manifest: AttachmentManifest, _ index: Int, bytes: [UInt8], verified: Bool) async throws {
        try await run { connection in
            try await connection.query(
                """
                INSERT INTO blob_upload_chunk (sha, index, bytes, verified)
                SELECT sha, \(index), \(ByteBuffer(bytes: bytes)), \(verified) FROM blob_upload
                WHERE sha = \(manifest.sha256) AND manifest = \(manifest.hash) FOR SHARE
                ON CONFLICT (sha, index) DO UPDATE SET bytes = excluded.bytes, verified = excluded.verified
                WHERE NOT blob_upload_chunk.verified AND length(blob_upload_chunk.bytes) <= length(excluded.bytes)
                """, logger: logger)
            try await connection.query(
                "UPDATE blob_upload SET touched = \(Self.now()) WHERE sha = \(manifest.sha256)", logger: logger)
        }
    }

    func dropChunk(_ manifest: AttachmentManifest, _ index: Int) async throws {
        try await run { connection in
            try await connection.query(
                "DELETE FROM blob_upload_chunk WHERE sha = \(manifest.sha256) AND index = \(index)", logger: logger)
        }
    }

    /// One transaction that locks the upload's row first: no chunk write, expiry or other commit
    /// can change what is hashed between the hash and the copy.
    public func commit(_ manifest: AttachmentManifest) async throws -> CommitResult {
        try await run { connection in
            try await connection.query("BEGIN", logger: logger)
            do {
                let result = try await commitLocked(manifest, connection)
                try await connection.query("COMMIT", logger: logger)
                return result
            } catch let failure as CommitFailure {
                // What was dropped (bad chunks, a lying manifest's upload) is committed, then refused.
                try await connection.query("COMMIT", logger: logger)
                throw failure.error
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    struct CommitFailure: Error { var error: BlobError }

    func commitLocked(_ manifest: AttachmentManifest, _ connection: PostgresConnection) async throws -> CommitResult {
        let sha = manifest.sha256
        if let size = try await hasBlob(sha, connection) {
            guard size == manifest.size else {
                throw BlobError(.mismatch, "the central node holds \(sha) with another size than this manifest says")
            }
            return .committed
        }
        var current: String?
        for try await hash in try await connection.query(
            "SELECT manifest FROM blob_upload WHERE sha = \(sha) FOR UPDATE", logger: logger
        ).decode(String.self) {
            current = hash
        }
        guard let current else { return .incomplete(missing: Array(0..<manifest.chunkCount)) }
        guard current == manifest.hash else { throw BlobError.uploadUnderWay }
        let chunks = try await progress(sha, connection)
        let missing = (0..<manifest.chunkCount).filter {
            !(chunks[$0]?.verified == true && chunks[$0]?.held == manifest.length(ofChunk: $0))
        }
        guard missing.isEmpty else { return .incomplete(missing: missing) }
        // The whole re-hashed from what the database holds (spec 19.4.3), one chunk in memory at a
        // time; each chunk's own hash is checked in the same pass.
        var whole = SHA256()
        var bad: [Int] = []
        for index in 0..<manifest.chunkCount {
            let bytes = try await chunkBytes("blob_upload_chunk", sha, index, connection) ?? []
            whole.update(data: bytes)
            if bytes.count != manifest.length(ofChunk: index) || ContentHash.hex(of: bytes) != manifest.chunks[index] { bad.append(index) }
        }
        if !bad.isEmpty {
            try await connection.query(
                "DELETE FROM blob_upload_chunk WHERE sha = \(sha) AND index = ANY(\(bad.map(Int64.init))::bigint[])", logger: logger)
            return .mismatch(chunks: bad)
        }
        guard ContentHash.hex(whole.finalize()) == sha else {
            try await connection.query("DELETE FROM blob_upload WHERE sha = \(sha)", logger: logger)
            throw CommitFailure(
                error: BlobError(.mismatch, "the chunks match the manifest but the file's SHA-256 is not \(sha): the manifest is wrong"))
        }
        try await connection.query(
            "INSERT INTO blob (sha, manifest, size, committed) VALUES (\(sha), \(manifest.hash), \(manifest.size), \(Int64(Self.now())))",
            logger: logger)
        var copied = 0
        for try await count in try await connection.query(
            """
            WITH copied AS (
                INSERT INTO blob_chunk (sha, index, bytes) SELECT sha, index, bytes FROM blob_upload_chunk
                WHERE sha = \(sha) AND index < \(manifest.chunkCount) RETURNING 1)
            SELECT COUNT(*)::integer FROM copied
            """, logger: logger
        ).decode(Int.self) {
            copied = count
        }
        guard copied == manifest.chunkCount else {
            throw BlobError("the upload of \(sha) changed while it was committed; send it again")
        }
        try await connection.query("DELETE FROM blob_upload WHERE sha = \(sha)", logger: logger)
        return .committed
    }

    func chunkBytes(_ table: String, _ sha: String, _ index: Int, _ connection: PostgresConnection) async throws -> [UInt8]? {
        let query: PostgresQuery =
            table == "blob_chunk"
            ? "SELECT bytes FROM blob_chunk WHERE sha = \(sha) AND index = \(index)"
            : "SELECT bytes FROM blob_upload_chunk WHERE sha = \(sha) AND index = \(index)"
        for try await bytes in try await connection.query(query, logger: logger).decode(ByteBuffer.self) { return Array(buffer: bytes) }
        return nil
    }

    public func readChunk(_ index: Int, of manifest: AttachmentManifest) async throws -> [UInt8] {
        guard (0..<manifest.chunkCount).contains(index) else { throw BlobError(.notFound, "chunk \(index) is not in the manifest") }
        return try await run { connection in
            guard let bytes = try await chunkBytes("blob_chunk", manifest.sha256, index, connection) else {
                throw BlobError(.notFound, "the central node holds no complete copy of \(manifest.sha256)")
            }
            guard bytes.count == manifest.length(ofChunk: index) else {
                throw BlobError("the blob \(manifest.sha256) is shorter than its manifest says: run `fieldsync verify`")
            }
            return bytes
        }
    }

    public func expireUploads(untouchedSince cutoff: Double) async throws -> [String] {
        try await run { connection in
            var expired: [String] = []
            for try await sha in try await connection.query(
                "DELETE FROM blob_upload WHERE touched < \(cutoff) RETURNING sha", logger: logger
            ).decode(String.self) {
                expired.append(sha)
            }
            return expired.sorted()
        }
    }

    public func verifyAll() async throws -> BlobVerification {
        try await run { connection in
            var blobs: [(String, Int64)] = []
            for try await row in try await connection.query("SELECT sha, size FROM blob ORDER BY sha", logger: logger).decode(
                (String, Int64).self)
            {
                blobs.append(row)
            }
            var result = BlobVerification()
            for (sha, size) in blobs {
                var whole = SHA256()
                var total: Int64 = 0
                var index = 0
                // Chunk by chunk, so that memory stays one chunk whatever the blob's size.
                while let bytes = try await chunkBytes("blob_chunk", sha, index, connection) {
                    whole.update(data: bytes)
                    total += Int64(bytes.count)
                    index += 1
                }
                result.checked += 1
                result.bytes += total
                if total != size || ContentHash.hex(whole.finalize()) != sha { result.damaged.append(sha) }
            }
            return result
        }
    }
}

/// One chunk being received into PostgreSQL: its bytes gather in memory (a chunk is at most
/// 8 MiB) and are written when the request ends, whole or cut short.
final class PostgresChunkUpload: ChunkUpload, @unchecked Sendable {
    // Touched by one request's task only.
    let storage: PostgresBlobStorage
    let manifest: AttachmentManifest
    let index: Int
    var bytes: [UInt8]
    let held: Int
    var skipping: Int
    var ended = false

    init(storage: PostgresBlobStorage, manifest: AttachmentManifest, index: Int, prefix: [UInt8], skipping: Int) {
        self.storage = storage
        self.manifest = manifest
        self.index = index
        self.bytes = prefix
        self.held = prefix.count
        self.skipping = skipping
    }

    var received: Int { bytes.count }

    func append(_ all: UnsafeRawBufferPointer) throws {
        var part = all[...]
        if skipping > 0 {
            let skipped = min(skipping, part.count)
            part = part.dropFirst(skipped)
            skipping -= skipped
        }
        guard bytes.count + part.count <= manifest.length(ofChunk: index) else {
            throw BlobError(.tooLarge, "chunk \(index) has \(manifest.length(ofChunk: index)) bytes; more were sent")
        }
        bytes.append(contentsOf: part)
    }

    func finish() async throws -> Bool {
        ended = true
        guard bytes.count == manifest.length(ofChunk: index) else {
            if bytes.count > held { try await storage.saveChunk(manifest, index, bytes: bytes, verified: false) }
            return false
        }
        guard ContentHash.hex(of: bytes) == manifest.chunks[index] else {
            try await storage.dropChunk(manifest, index)
            throw BlobError(.mismatch, "chunk \(index)'s bytes do not hash to \(manifest.chunks[index]) (the manifest's); it was dropped")
        }
        try await storage.saveChunk(manifest, index, bytes: bytes, verified: true)
        return true
    }

    func abandon() async {
        guard !ended else { return }
        ended = true
        if bytes.count > held { try? await storage.saveChunk(manifest, index, bytes: bytes, verified: false) }
    }
}
