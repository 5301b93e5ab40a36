import FieldSyncBlobs
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore
import Foundation

/// Moves attachment bytes between a replica and its central node (spec 19.8): uploads what the
/// central node lacks, resuming below the chunk after a dropped connection, keeps the receipts,
/// and fetches chunks it lacks, each checked against the manifest before it is stored.
///
/// A transient failure (network, 5xx, a busy chunk) is retried after a backoff, asking the central
/// node what it holds first; `retries` bounds the failures in a row without progress.
public struct AttachmentTransfer: Sendable {
    public let store: ReplicaStore
    public let transport: HTTPSyncTransport
    public let retries: Int
    /// Backoff before retry `n` (1-based), in seconds.
    public let backoff: @Sendable (Int) -> Double

    public init(
        store: ReplicaStore, transport: HTTPSyncTransport, retries: Int = 3,
        backoff: @escaping @Sendable (Int) -> Double = { min(8, 0.25 * pow(2, Double($0 - 1))) }
    ) {
        self.store = store
        self.transport = transport
        self.retries = retries
        self.backoff = backoff
    }

    /// What moved, for the summary.
    public struct Report: Sendable, Equatable {
        public var uploaded = 0
        public var uploadedBytes: Int64 = 0
        public var downloaded = 0
        public var downloadedBytes: Int64 = 0
        public var receipts = 0
        public var retries = 0
        /// Attachments that could not move, with the reason, one line each.
        public var failed: [String] = []
        /// Attachments held here only in part (a partial bundle import) that the central node does
        /// not hold whole either, one line each: not this sync's failure, but nobody has them all.
        public var incomplete: [String] = []
        public init() {}
    }

    /// Progress: bytes moved so far of the bytes to move in this pass.
    public typealias Progress = @Sendable (_ direction: String, _ done: Int64, _ total: Int64) -> Void

    /// Uploads every attachment kept here that has no verified receipt yet.
    public func uploadAll(progress: Progress = { _, _, _ in }) async throws -> Report {
        var report = Report()
        let key = try store.enrolment()?.serverKey
        let pending = try store.localAttachments().filter { manifest in
            (try? store.receiptStatus(manifest.sha256, manifest.content)) != "verified"
                && store.blobs.heldChunks(of: manifest).allSatisfy { $0 }
        }
        for manifest in try store.localAttachments() where !store.blobs.heldChunks(of: manifest).allSatisfy({ $0 }) {
            guard (try? store.receiptStatus(manifest.sha256, manifest.content)) != "verified" else { continue }
            let state = try? await transport.attachmentStatus([AttachmentQuery(sha256: manifest.sha256, manifest: manifest.hash)]).first
            if case .complete(let receipt)? = state, let key, receipt.vouches(for: manifest.sha256, manifest.content, issuerKey: key) {
                try store.storeAttachmentReceipt(receipt)
                report.receipts += 1
                continue
            }
            let held = store.blobs.heldChunks(of: manifest).filter { $0 }.count
            report.incomplete.append(
                "\(manifest.sha256): only \(held) of its \(manifest.chunkCount) chunks are here, and the central node does not hold it whole either"
            )
        }
        let total = pending.reduce(Int64(0)) { $0 + $1.size }
        var done: Int64 = 0
        for manifest in pending {
            do {
                let (receipt, sent) = try await upload(manifest, report: &report) { moved in progress("upload", done + moved, total) }
                guard let key, receipt.vouches(for: manifest.sha256, manifest.content, issuerKey: key) else {
                    report.failed.append(
                        key == nil
                            ? "\(manifest.sha256): uploaded, but this replica has no pinned central node key to verify the receipt with (sync once more to pin it)"
                            : "\(manifest.sha256): the central node's receipt does not verify with its pinned key")
                    continue
                }
                try store.storeAttachmentReceipt(receipt)
                report.receipts += 1
                if sent > 0 {
                    report.uploaded += 1
                    report.uploadedBytes += sent
                }
            } catch let error as SyncError where !error.isTransient {
                report.failed.append("\(manifest.sha256): \(error)")
            } catch let error as BlobError {
                // A damaged local chunk stops this attachment, not the others.
                report.failed.append("\(manifest.sha256): \(error.description) (run `fieldsync verify`)")
            }
            done += manifest.size
        }
        return report
    }

    /// Uploads one attachment; returns the central node's receipt and the chunk bytes sent.
    func upload(_ manifest: AttachmentManifest, report: inout Report, moved: (Int64) -> Void) async throws -> (AttachmentReceipt, Int64) {
        // Failures in a row without progress, where progress is the central node holding more
        // bytes than at the previous status: a chunk it keeps dropping cannot loop forever.
        var failures = 0
        var sent: Int64 = 0
        var heldBefore: Int64 = -1
        while true {
            do {
                let query = AttachmentQuery(sha256: manifest.sha256, manifest: manifest.hash)
                guard let state = try await transport.attachmentStatus([query]).first else { throw SyncError.badResponse("no status") }
                var missing: [Int]
                var received: [Int: Int] = [:]
                switch state {
                case .complete(let receipt): return (receipt, sent)
                case .unreferenced:
                    throw SyncError.rejected(
                        status: 422, error: ProtocolError(.unreferenced, "the central node has no revision referencing it yet (sync again)")
                    )
                case .unknown:
                    // Also when the central node has the manifest: sending it (again) starts the
                    // upload, which may have expired.
                    try await transport.putManifest(manifest)
                    missing = Array(0..<manifest.chunkCount)
                case .partial(let stillMissing, let partly):
                    missing = stillMissing
                    received = partly
                }
                // What the central node says is checked, never trusted: an index or an offset
                // outside the chunk is a bad answer, not a crash.
                for index in missing {
                    guard (0..<manifest.chunkCount).contains(index),
                        (0..<max(1, manifest.length(ofChunk: index))).contains(received[index] ?? 0)
                    else {
                        throw SyncError.badResponse(
                            "attachments/status named chunk \(index) at \(received[index] ?? 0), outside the manifest")
                    }
                }
                let held =
                    manifest.size - missing.reduce(Int64(0)) { $0 + Int64(manifest.length(ofChunk: $1)) }
                    + received.values.reduce(Int64(0)) { $0 + Int64($1) }
                if held > heldBefore { failures = 0 }
                heldBefore = held
                // The next chunk is read while this one is on the wire.
                let store = self.store
                var prefetched: Task<[UInt8], any Error>?
                defer { prefetched?.cancel() }
                for (position, index) in missing.enumerated() {
                    let bytes = try await prefetched?.value ?? store.blobs.chunk(index, of: manifest, verifying: false)
                    if position + 1 < missing.count {
                        let following = missing[position + 1]
                        prefetched = Task { try store.blobs.chunk(following, of: manifest, verifying: false) }
                    } else {
                        prefetched = nil
                    }
                    let offset = received[index] ?? 0
                    let held = try await transport.putChunk(index, of: manifest, from: offset, bytes: bytes[offset...])
                    sent += Int64(bytes.count - offset)
                    guard held == bytes.count else { throw SyncError.transport("chunk \(index) arrived in part (\(held) bytes)") }
                    moved(manifest.offset(ofChunk: index) + Int64(bytes.count))
                }
                return (try await transport.commitAttachment(manifest), sent)
            } catch let error as SyncError where error.isTransient || error.isUploadConflict || error.isChunkMismatch {
                // The central node found a chunk's bytes wrong: damaged here (said so, and this
                // attachment stops), or on the way (sent again).
                if error.isChunkMismatch {
                    for index in 0..<manifest.chunkCount { _ = try store.blobs.chunk(index, of: manifest) }
                }
                failures += 1
                report.retries += 1
                guard failures <= retries else { throw error }
                try await Task.sleep(nanoseconds: UInt64(backoff(failures) * 1e9))
            }
        }
    }

    /// Fetches the chunks of `sha256` this replica lacks and keeps them; returns the bytes fetched.
    /// Every chunk is checked against the manifest, itself checked against `content`.
    @discardableResult
    public func fetch(_ sha256: String, _ content: AttachmentContent, report: inout Report, progress: Progress = { _, _, _ in })
        async throws -> Int64
    {
        var failures = 0
        var fetched: Int64 = 0
        while true {
            do {
                let manifest: AttachmentManifest
                if let held = try store.attachmentManifest(hash: content.manifest) {
                    manifest = held
                } else {
                    manifest = try await transport.manifest(of: sha256, hash: content.manifest)
                    guard manifest.content == content else {
                        throw SyncError.badResponse("the central node's manifest of \(sha256) does not match the record's content")
                    }
                }
                try store.markLocal(manifest, now: Int64(Date().timeIntervalSince1970 * 1000))
                let held = store.blobs.heldChunks(of: manifest)
                if held.contains(false) {
                    // The receipt too: the copy it vouches for is what is fetched.
                    if case .complete(let receipt)? = try await transport.attachmentStatus([
                        AttachmentQuery(sha256: sha256, manifest: manifest.hash)
                    ]).first, let key = try store.enrolment()?.serverKey, receipt.vouches(for: sha256, content, issuerKey: key) {
                        try store.storeAttachmentReceipt(receipt)
                    }
                }
                for index in 0..<manifest.chunkCount where !held[index] {
                    let bytes = try await transport.chunk(index, of: manifest)
                    guard bytes.count == manifest.length(ofChunk: index), ContentHash.hex(of: bytes) == manifest.chunks[index] else {
                        throw AttachmentTransferError(
                            "the central node's copy of chunk \(index) of \(sha256) does not match its manifest: it is damaged there (an admin can run `fieldsync verify` on the central node); nothing was written"
                        )
                    }
                    do { try bytes.withUnsafeBytes { try store.blobs.store($0, chunk: index, of: manifest) } } catch let error as BlobError
                    {
                        throw AttachmentTransferError("cannot keep chunk \(index) of \(sha256) here: \(error.description)")
                    }
                    fetched += Int64(bytes.count)
                    progress("download", manifest.offset(ofChunk: index) + Int64(bytes.count), manifest.size)
                    failures = 0
                }
                if fetched > 0 {
                    report.downloaded += 1
                    report.downloadedBytes += fetched
                }
                return fetched
            } catch let error as SyncError where error.isTransient {
                failures += 1
                report.retries += 1
                guard failures <= retries else { throw error }
                try await Task.sleep(nanoseconds: UInt64(backoff(failures) * 1e9))
            }
        }
    }

    /// Fetches every referenced attachment this replica lacks (`sync --attachments all`).
    public func downloadAll(progress: Progress = { _, _, _ in }) async throws -> Report {
        var report = Report()
        var seen = Set<String>()
        for reference in try store.allAttachmentReferences() where seen.insert(reference.sha256).inserted {
            guard try store.localState(of: reference.sha256) != .complete else { continue }
            do { try await fetch(reference.sha256, reference.content, report: &report, progress: progress) } catch let error as SyncError
                where !error.isTransient
            {
                // Not there yet (its author has not uploaded it): the next sync tries again.
                if case .rejected(404, _) = error { continue }
                report.failed.append("\(reference.sha256): \(error)")
            } catch let error as AttachmentTransferError {
                report.failed.append("\(reference.sha256): \(error)")
            }
        }
        return report
    }
}

extension SyncError {
    /// 409 upload_conflict: another request is writing the chunk, or the offset moved; ask again.
    var isUploadConflict: Bool {
        if case .rejected(409, let error) = self, error.code == .uploadConflict { return true }
        return false
    }

    /// 422 chunk_mismatch: the central node hashed a chunk and it was not the manifest's.
    var isChunkMismatch: Bool {
        if case .rejected(_, let error) = self, error.code == .chunkMismatch { return true }
        return false
    }
}

/// An attachment that cannot be moved, in one line.
public struct AttachmentTransferError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
