import AsyncHTTPClient
import FieldSyncBlobs
import FieldSyncCore
import FieldSyncProtocol
import NIOCore

/// The attachment routes (spec 19.3 to 19.7).
extension HTTPSyncTransport {
    public func attachmentStatus(_ queries: [AttachmentQuery]) async throws -> [AttachmentAvailability] {
        let json = try await send(method: .POST, path: "/v1/attachments/status", body: AttachmentQuery.body(queries).canonicalBytes)
        guard let items = json["attachments"]?.arrayValue, items.count == queries.count else {
            throw SyncError.badResponse("attachments/status did not answer for every attachment asked")
        }
        do { return try items.map { (item) throws(ProtocolError) in try AttachmentAvailability(json: item) } } catch {
            throw SyncError.badResponse(error.description)
        }
    }

    public func putManifest(_ manifest: AttachmentManifest) async throws {
        _ = try await send(method: .PUT, path: "/v1/attachments/\(manifest.sha256)/manifest", body: manifest.canonicalBytes)
    }

    public func manifest(of sha256: String, hash: String) async throws -> AttachmentManifest {
        let (_, bytes, _) = try await rawExchange(
            method: .GET, path: "/v1/attachments/\(sha256)/manifest?manifest=\(hash)", body: nil, contentType: "", headers: [],
            limit: AttachmentManifest.maximumBytes)
        let manifest: AttachmentManifest
        do { manifest = try AttachmentManifest(bytes: Array(bytes.readableBytesView)) } catch {
            throw SyncError.badResponse("the manifest of \(sha256): \(error)")
        }
        guard manifest.hash == hash, manifest.sha256 == sha256 else {
            throw SyncError.badResponse("the central node sent a manifest that is not \(hash) of \(sha256)")
        }
        return manifest
    }

    /// Sends bytes `offset...` of chunk `index`; returns how many of the chunk's bytes the central
    /// node now holds.
    @discardableResult
    public func putChunk(_ index: Int, of manifest: AttachmentManifest, from offset: Int, bytes: ArraySlice<UInt8>) async throws -> Int {
        let (_, body, _) = try await rawExchange(
            method: .PUT, path: "/v1/attachments/\(manifest.sha256)/chunks/\(index)?manifest=\(manifest.hash)",
            body: ByteBuffer(bytes: bytes), contentType: "application/octet-stream", headers: [("FieldSync-Offset", String(offset))])
        guard let received = (try? JSONValue(parsing: body.readableBytesView))?["received"]?.intValue else {
            throw SyncError.badResponse("a chunk upload answers with the bytes received")
        }
        return Int(received)
    }

    public func chunk(_ index: Int, of manifest: AttachmentManifest) async throws -> [UInt8] {
        let (_, bytes, _) = try await rawExchange(
            method: .GET, path: "/v1/attachments/\(manifest.sha256)/chunks/\(index)?manifest=\(manifest.hash)", body: nil,
            contentType: "", headers: [], accept: "application/octet-stream", limit: AttachmentContent.chunkSizes.upperBound)
        return Array(bytes.readableBytesView)
    }

    public func commitAttachment(_ manifest: AttachmentManifest) async throws -> AttachmentReceipt {
        let json = try await send(method: .POST, path: "/v1/attachments/\(manifest.sha256)/commit?manifest=\(manifest.hash)", body: [])
        guard let receipt = json["receipt"] else { throw SyncError.badResponse("a commit answers with a receipt") }
        do { return try AttachmentReceipt(json: receipt) } catch { throw SyncError.badResponse(error.description) }
    }
}
