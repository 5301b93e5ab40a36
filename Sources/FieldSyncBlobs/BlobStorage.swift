import FieldSyncCore

/// Where the central node keeps attachment bytes (spec 19.5): write-once, content-addressed blobs,
/// and the uploads still being assembled. The filesystem implementation is ``FileBlobStorage``; a
/// backend shared by several `serve` instances conforms the same way.
///
/// Uploads resume below the chunk: each chunk records how many of its bytes arrived, so an upload
/// cut mid-chunk goes on from there.
public protocol BlobStorage: Sendable {
    /// What is held of the attachment `manifest` describes.
    func state(of manifest: AttachmentManifest) async throws -> BlobState
    /// Starts an upload (nothing when one is under way or the blob is complete). Chunks are
    /// accepted only for an upload that was started, so every upload is counted and expires.
    func beginUpload(_ manifest: AttachmentManifest) async throws
    /// Continues writing chunk `index` at `offset` bytes into it. The offset must be what
    /// ``state(of:)`` reports as received for that chunk.
    func openChunk(_ index: Int, of manifest: AttachmentManifest, at offset: Int) async throws -> any ChunkUpload
    /// Re-hashes the assembled file against the manifest and, when every byte matches, makes it
    /// a complete, durable blob. Chunks that do not match are dropped and named.
    func commit(_ manifest: AttachmentManifest) async throws -> CommitResult
    /// The bytes of chunk `index` of a complete blob.
    func readChunk(_ index: Int, of manifest: AttachmentManifest) async throws -> [UInt8]
    /// Drops uploads untouched since `cutoff` (seconds since 1970); returns their hashes.
    func expireUploads(untouchedSince cutoff: Double) async throws -> [String]
    /// Re-hashes every complete blob; returns those whose bytes no longer match their name.
    func verifyAll() async throws -> BlobVerification
}

/// What a blob storage holds of one attachment.
public enum BlobState: Equatable, Sendable {
    case complete
    /// Some chunks are missing; `received` maps a chunk that arrived in part to its byte count.
    case partial(missing: [Int], received: [Int: Int])
    case absent
}

/// What committing an upload gave.
public enum CommitResult: Equatable, Sendable {
    case committed
    /// These chunks are not all there yet.
    case incomplete(missing: [Int])
    /// These chunks' bytes do not hash to the manifest's; they were dropped and must be sent again.
    case mismatch(chunks: [Int])
}

/// One chunk being received. Bytes are written as they arrive, so what arrived before a dropped
/// connection is kept.
public protocol ChunkUpload: Sendable {
    func append(_ bytes: UnsafeRawBufferPointer) throws
    /// Ends the request: once all the chunk's bytes arrived, checks its hash (throwing
    /// ``BlobError`` and dropping the chunk when it does not match) and returns true; with bytes
    /// still to come, keeps what arrived and returns false.
    @discardableResult
    func finish() async throws -> Bool
    /// How many of the chunk's bytes have arrived, this request's included.
    var received: Int { get }
    /// Keeps what arrived (a dropped connection).
    func abandon() async
}

/// The outcome of re-hashing blobs.
public struct BlobVerification: Sendable, Equatable {
    public var checked: Int
    public var bytes: Int64
    /// Hashes (the blob names) whose bytes differ from them.
    public var damaged: [String]

    public init(checked: Int = 0, bytes: Int64 = 0, damaged: [String] = []) {
        self.checked = checked
        self.bytes = bytes
        self.damaged = damaged
    }
}
