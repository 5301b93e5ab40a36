import FieldSyncBlobs
import FieldSyncCore
import FieldSyncProtocol
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// How the central node keeps attachments (`serve --blobs`, `--max-attachment-size`,
/// `--attachment-quota`, `--upload-expiry`).
public struct AttachmentConfiguration: Sendable {
    public var blobs: any BlobStorage
    /// The largest attachment accepted, in bytes (default 16 GiB).
    public var maximumSize: Int64
    /// Bytes one account may have stored and under way; nil: no quota.
    public var quota: Int64?
    /// Seconds after which an upload nobody touched is dropped (default 7 days).
    public var uploadExpiry: Double

    public static let defaultMaximumSize: Int64 = 16 << 30
    public static let defaultUploadExpiry: Double = 7 * 24 * 3600

    public init(
        blobs: any BlobStorage, maximumSize: Int64 = defaultMaximumSize, quota: Int64? = nil, uploadExpiry: Double = defaultUploadExpiry
    ) {
        self.blobs = blobs
        self.maximumSize = maximumSize
        self.quota = quota
        self.uploadExpiry = uploadExpiry
    }
}

/// The attachment routes under `/v1/attachments` (spec 19.3 to 19.7), all behind the bearer token,
/// which the middleware checks before any body is read. Bytes are accepted only for attachments a
/// stored revision references, and only after their manifest.
struct AttachmentRoutes<Storage: AttachmentStorage & AccountStorage>: Sendable {
    let storage: Storage
    let configuration: AttachmentConfiguration
    /// Whether audit entries record client addresses (`serve --log-addresses`).
    let logAddresses: Bool
    /// When uploads were last swept for expiry (seconds since 1970).
    let lastSweep = SweepClock()

    var blobs: any BlobStorage { configuration.blobs }

    func add(to group: RouterGroup<SyncRequestContext>) {
        group.post("attachments/status") { request, context in try await status(request, context) }
        group.put("attachments/:sha/manifest") { request, context in try await putManifest(request, context) }
        group.get("attachments/:sha/manifest") { request, context in try await getManifest(request, context) }
        group.put("attachments/:sha/chunks/:index") { request, context in try await putChunk(request, context) }
        group.get("attachments/:sha/chunks/:index") { request, context in try await getChunk(request, context) }
        group.post("attachments/:sha/commit") { request, context in try await commit(request, context) }
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// The most missing chunks a status answer names per attachment.
    static var maximumMissingListed: Int { 512 }

    func sha(_ context: SyncRequestContext) throws -> String {
        guard let sha = context.parameters.get("sha"), Revision.isHash(sha) else {
            throw ProtocolError(.malformed, "an attachment is named by its SHA-256: 64 lowercase hex digits")
        }
        return sha
    }

    func manifestHash(_ request: Request) throws -> String {
        guard let hash = request.uri.queryParameters.get("manifest"), Revision.isHash(hash) else {
            throw ProtocolError(.malformed, "give ?manifest=SHA256 (the manifest's hash, as the record's content names it)")
        }
        return hash
    }

    /// The stored manifest of `sha` with this hash, which a stored revision references.
    func manifest(_ sha: String, _ hash: String) async throws -> AttachmentManifest {
        let references = try await storage.attachmentReferences(sha)
        guard references.contains(where: { $0.manifest == hash }) else {
            throw ProtocolError(
                .unreferenced, "no stored revision references attachment \(sha) with manifest \(hash); push the revision first")
        }
        guard let bytes = try await storage.attachmentManifest(hash: hash) else {
            throw ProtocolError(
                .notFound, "the central node has no manifest \(hash) yet; upload it first (PUT /v1/attachments/\(sha)/manifest)")
        }
        return try AttachmentManifest(bytes: bytes)
    }

    func availability(_ query: AttachmentQuery) async throws -> AttachmentAvailability {
        let references = try await storage.attachmentReferences(query.sha256)
        guard references.contains(where: { $0.manifest == query.manifest }) else { return .unreferenced }
        guard let bytes = try await storage.attachmentManifest(hash: query.manifest) else { return .unknown(needsManifest: true) }
        let manifest = try AttachmentManifest(bytes: bytes)
        switch try await blobs.state(of: manifest) {
        case .complete:
            // Committed bytes without a receipt (a crash between the two): commit again issues it.
            guard let receipt = try await storage.attachmentReceipt(query.sha256) else { return .partial(missing: [], received: [:]) }
            return .complete(receipt)
        case .partial(let missing, let received): return .partial(missing: missing, received: received)
        case .absent: return .unknown(needsManifest: false)
        }
    }

    func status(_ request: Request, _ context: SyncRequestContext) async throws -> Response {
        _ = try context.requirePrincipal()
        let queries = try AttachmentQuery.list(try await JSONBody.read(request))
        try await sweepIfDue()
        var answers: [JSONValue] = []
        var known: [AttachmentQuery: JSONValue] = [:]
        for query in queries {
            if let answer = known[query] {
                answers.append(answer)
                continue
            }
            var state = try await availability(query)
            // Every response stays small: at most this many missing chunks are named per
            // attachment, and the next status after they arrive names the next ones (spec 19.3).
            if case .partial(let missing, let received) = state, missing.count > Self.maximumMissingListed {
                let listed = Array(missing.prefix(Self.maximumMissingListed))
                state = .partial(missing: listed, received: received.filter { listed.contains($0.key) })
            }
            let answer = state.json(sha256: query.sha256)
            known[query] = answer
            answers.append(answer)
        }
        return JSONResponse.make(["attachments": .array(answers)])
    }

    func putManifest(_ request: Request, _ context: SyncRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let sha = try sha(context)
        var request = request
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: AttachmentManifest.maximumBytes) } catch is NIOTooManyBytesError {
            throw ProtocolError(.tooLarge, "a manifest has at most \(AttachmentManifest.maximumBytes) bytes")
        }
        let manifest: AttachmentManifest
        do { manifest = try AttachmentManifest(bytes: Array(body.readableBytesView)) } catch {
            throw ProtocolError(.malformed, error.description)
        }
        guard manifest.sha256 == sha else { throw ProtocolError(.malformed, "the manifest describes \(manifest.sha256), not \(sha)") }
        let references = try await storage.attachmentReferences(sha)
        guard references.contains(manifest.content) else {
            throw ProtocolError(
                .unreferenced, "no stored revision references attachment \(sha) with this manifest and size; push the revision first")
        }
        guard manifest.size <= configuration.maximumSize else {
            throw ProtocolError(
                .tooLarge, "the attachment has \(manifest.size) bytes; this central node accepts at most \(configuration.maximumSize)")
        }
        try await sweepIfDue()
        if try await blobs.state(of: manifest) != .complete {
            // Counted against the quota unless a receipt exists: then the bytes were lost here (a
            // restore, a deleted file) and this upload repairs them.
            let receipted = try await storage.attachmentReceipt(sha) != nil
            if !receipted {
                try await storage.beginAttachmentUpload(
                    sha, manifest: manifest.hash, size: manifest.size, account: principal.account, quota: configuration.quota,
                    now: Self.now())
            }
            do { try await blobs.beginUpload(manifest) } catch let error as BlobError {
                // Nothing was started: the quota is not held for it.
                if error.kind != .busy, !receipted { try await storage.forgetAttachmentUploads([sha]) }
                throw Self.protocolError(error)
            }
        }
        try await storage.storeAttachmentManifest(hash: manifest.hash, bytes: manifest.canonicalBytes)
        return JSONResponse.make(try await availability(AttachmentQuery(sha256: sha, manifest: manifest.hash)).json(sha256: sha))
    }

    func getManifest(_ request: Request, _ context: SyncRequestContext) async throws -> Response {
        _ = try context.requirePrincipal()
        let manifest = try await manifest(try sha(context), try manifestHash(request))
        return JSONResponse.make(bytes: manifest.canonicalBytes, compressingFor: request)
    }

    func chunkIndex(_ context: SyncRequestContext, _ manifest: AttachmentManifest) throws -> Int {
        guard let index = context.parameters.get("index").flatMap(Int.init), (0..<manifest.chunkCount).contains(index) else {
            throw ProtocolError(.notFound, "the attachment has chunks 0 to \(manifest.chunkCount - 1)")
        }
        return index
    }

    func putChunk(_ request: Request, _ context: SyncRequestContext) async throws -> Response {
        _ = try context.requirePrincipal()
        let manifest = try await manifest(try sha(context), try manifestHash(request))
        let index = try chunkIndex(context, manifest)
        let offsetText = request.headers[HTTPField.Name("FieldSync-Offset")!] ?? "0"
        guard let offset = Int(offsetText), (0...manifest.length(ofChunk: index)).contains(offset) else {
            throw ProtocolError(
                .malformed, "FieldSync-Offset is the byte offset inside the chunk, from 0 to \(manifest.length(ofChunk: index))")
        }
        let remaining = manifest.length(ofChunk: index) - offset
        if let length = request.headers[.contentLength].flatMap(Int.init), length > remaining {
            throw ProtocolError(.tooLarge, "chunk \(index) has \(remaining) bytes left from offset \(offset); \(length) were sent")
        }
        let upload: any ChunkUpload
        do { upload = try await blobs.openChunk(index, of: manifest, at: offset) } catch let error as BlobError {
            throw Self.protocolError(error)
        }
        do {
            for try await buffer in request.body {
                try buffer.withUnsafeReadableBytes { try upload.append($0) }
            }
        } catch let error as BlobError {
            await upload.abandon()
            throw Self.protocolError(error)
        } catch {
            // The connection dropped: what arrived is kept, and the upload resumes from there.
            await upload.abandon()
            throw error
        }
        let complete: Bool
        do { complete = try await upload.finish() } catch let error as BlobError { throw Self.protocolError(error) }
        // A body that ended before the chunk's end is kept: the rest may follow from `received`.
        return JSONResponse.make([
            "sha256": .string(manifest.sha256), "chunk": .int(Int64(index)), "received": .int(Int64(upload.received)),
            "complete": .bool(complete),
        ])
    }

    /// The client's mistakes as 4xx; the node's own storage failing (a full disk) stays an error
    /// the middleware answers 500, which clients retry.
    static func protocolError(_ error: BlobError) -> any Error {
        switch error.kind {
        case .busy, .offset: ProtocolError(.uploadConflict, error.description)
        case .mismatch: ProtocolError(.chunkMismatch, error.description)
        case .tooLarge: ProtocolError(.tooLarge, error.description)
        case .notFound: ProtocolError(.notFound, error.description)
        case .io: error
        }
    }

    func getChunk(_ request: Request, _ context: SyncRequestContext) async throws -> Response {
        _ = try context.requirePrincipal()
        let sha = try sha(context)
        let manifest = try await manifest(sha, try manifestHash(request))
        let index = try chunkIndex(context, manifest)
        guard try await storage.attachmentReceipt(sha) != nil, try await blobs.state(of: manifest) == .complete else {
            throw ProtocolError(.notFound, "the central node does not hold all of attachment \(sha) yet")
        }
        let bytes: [UInt8]
        do { bytes = try await blobs.readChunk(index, of: manifest) } catch let error as BlobError { throw Self.protocolError(error) }
        return Response(
            status: .ok, headers: [.contentType: "application/octet-stream"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    func commit(_ request: Request, _ context: SyncRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let sha = try sha(context)
        let manifest = try await manifest(sha, try manifestHash(request))
        let result: CommitResult
        do { result = try await blobs.commit(manifest) } catch let error as BlobError {
            // A manifest whose chunks do not make its file: the upload is gone, and so is its charge.
            if error.kind == .mismatch { try await storage.forgetAttachmentUploads([sha]) }
            throw Self.protocolError(error)
        }
        switch result {
        case .committed: break
        case .incomplete(let missing):
            throw ProtocolError(
                .uploadConflict,
                "\(missing.count) chunk\(missing.count == 1 ? " is" : "s are") still missing (first: \(missing[0])); send them first")
        case .mismatch(let chunks):
            throw ProtocolError(
                .chunkMismatch,
                "chunk\(chunks.count == 1 ? "" : "s") \(chunks.prefix(8).map(String.init).joined(separator: ", ")) did not hash to the manifest's and \(chunks.count == 1 ? "was" : "were") dropped; send \(chunks.count == 1 ? "it" : "them") again"
            )
        }
        let receipt = try await storage.issueAttachmentReceipt(
            sha256: sha, size: manifest.size, manifest: manifest.hash, node: principal.node, account: principal.account, now: Self.now())
        try await storage.appendAudit(
            AuditEntry(
                time: Self.now(), user: principal.account, device: principal.node.rawValue, action: "attachment",
                detail: "\(sha) \(manifest.size) bytes", address: logAddresses ? context.sourceAddress : nil))
        return JSONResponse.make(["receipt": receipt.json])
    }

    /// Drops uploads untouched for longer than the expiry, at most once a minute.
    func sweepIfDue() async throws {
        let clock = Date().timeIntervalSince1970
        let due = lastSweep.last.withLock { last -> Bool in
            guard clock - last >= 60 || configuration.uploadExpiry < 60 else { return false }
            last = clock
            return true
        }
        guard due else { return }
        let expired = try await blobs.expireUploads(untouchedSince: clock - configuration.uploadExpiry)
        try await storage.forgetAttachmentUploads(expired)
    }
}

/// When uploads were last swept for expiry, shared by the copies of the routes.
final class SweepClock: Sendable {
    let last = Mutex<Double>(0)
}
