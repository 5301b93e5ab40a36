import Crypto
import FieldSyncBlobs
import FieldSyncCore
import Foundation

/// A replica's attachment chunks, one file per chunk in the folder beside the replica
/// (`REPLICA.blobs/`). In an encrypted replica each chunk is sealed with ChaCha20-Poly1305 under a
/// subkey of the data key, its hash as associated data, padded (the last chunk of a file, with
/// Padmé), and named by a keyed hash, so the folder shows neither names, hashes nor exact sizes.
///
/// Chunks are written to a temporary name, fsynced and renamed: a chunk file is whole or absent.
/// `@unchecked Sendable`: its keys are immutable `SymmetricKey`s, which swift-crypto does not mark.
public final class ReplicaBlobStore: @unchecked Sendable {
    public let root: String
    private let chunkKey: SymmetricKey?
    private let nameKey: SymmetricKey?

    init(root: String, key: StoreKey?) {
        self.root = root
        chunkKey = key?.subkey("blob chunk v1")
        nameKey = key?.subkey("blob name v1")
    }

    public var isEncrypted: Bool { chunkKey != nil }

    static let sealedPrefix: UInt8 = 1
    static let associatedPrefix = Array("fieldsync blob chunk v1\0".utf8)

    /// The file of chunk `index` of the attachment `sha256`.
    public func chunkPath(_ sha256: String, _ index: Int) -> String {
        let name: String
        if let nameKey {
            name = ContentHash.hexDigits(HMAC<SHA256>.authenticationCode(for: Array("\(sha256)/\(index)".utf8), using: nameKey))
        } else {
            name = "\(sha256).\(index)"
        }
        return "\(root)/\(name.prefix(2))/\(name)"
    }

    public func hasChunk(_ sha256: String, _ index: Int) -> Bool { FileManager.default.fileExists(atPath: chunkPath(sha256, index)) }

    /// Which chunks of `manifest` are held.
    public func heldChunks(of manifest: AttachmentManifest) -> [Bool] {
        (0..<manifest.chunkCount).map { hasChunk(manifest.sha256, $0) }
    }

    func ensureFolder(_ path: String) throws {
        let folder = (path as NSString).deletingLastPathComponent
        if !FileManager.default.fileExists(atPath: folder) {
            do {
                try FileManager.default.createDirectory(
                    atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch { throw BlobError("cannot create \(folder): \(error.localizedDescription)") }
        }
    }

    /// The bytes a chunk file holds: the chunk itself, or its sealed form.
    func fileBytes(of bytes: UnsafeRawBufferPointer, hash: String, chunkSize: Int) throws -> [UInt8] {
        guard let chunkKey else { return Array(bytes) }
        var plaintext = [UInt8]()
        // Full chunks all have the same length; a shorter (last) chunk is padded with Padmé.
        let padded = bytes.count == chunkSize ? chunkSize + 1 : min(Padme.paddedLength(bytes.count + 1), chunkSize + 1)
        plaintext.reserveCapacity(padded)
        plaintext.append(contentsOf: bytes)
        plaintext.append(0x80)
        plaintext.append(contentsOf: repeatElement(0, count: padded - plaintext.count))
        let box = try ChaChaPoly.seal(plaintext, using: chunkKey, authenticating: Self.associatedPrefix + Array(hash.utf8))
        return [Self.sealedPrefix] + Array(box.combined)
    }

    /// Writes one chunk (already checked against `hash`) durably at `path`.
    func writeFile(_ bytes: [UInt8], to path: String) throws {
        try ensureFolder(path)
        let temporary = path + ".partial"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw BlobError("cannot write \(temporary): \(String(cString: strerror(errno)))") }
        do {
            try bytes.withUnsafeBytes { try FileDigester.writeFully(descriptor, $0) }
            guard fsync(descriptor) == 0 else { throw BlobError("cannot flush \(temporary) to disk") }
        } catch {
            close(descriptor)
            unlink(temporary)
            throw error
        }
        close(descriptor)
        guard rename(temporary, path) == 0 else { throw BlobError("cannot store \(path): \(String(cString: strerror(errno)))") }
        FileBlobStorage.syncFolder((path as NSString).deletingLastPathComponent)
    }

    /// Stores chunk `index` of `manifest`, checking its bytes against the manifest first.
    public func store(_ bytes: UnsafeRawBufferPointer, chunk index: Int, of manifest: AttachmentManifest) throws {
        guard (0..<manifest.chunkCount).contains(index), bytes.count == manifest.length(ofChunk: index),
            ContentHash.hex(of: bytes) == manifest.chunks[index]
        else { throw BlobError(.mismatch, "chunk \(index) of \(manifest.sha256) does not match its manifest") }
        try writeFile(
            try fileBytes(of: bytes, hash: manifest.chunks[index], chunkSize: manifest.chunkSize), to: chunkPath(manifest.sha256, index))
    }

    /// A chunk's original bytes, checked against the manifest; throws when the file is damaged.
    /// `verifying: false` skips the SHA-256 of a plaintext chunk (an upload, which the central
    /// node hashes anyway; a sealed chunk is always authenticated by its AEAD tag, whose associated
    /// data is the chunk's hash).
    public func chunk(_ index: Int, of manifest: AttachmentManifest, verifying: Bool = true) throws -> [UInt8] {
        let path = chunkPath(manifest.sha256, index)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BlobError(.notFound, "chunk \(index) of \(manifest.sha256) is not held here")
        }
        let hash = manifest.chunks[index]
        var bytes = [UInt8](data)
        if let chunkKey {
            guard bytes.first == Self.sealedPrefix, bytes.count >= 1 + 12 + 16 + 1,
                let box = try? ChaChaPoly.SealedBox(combined: bytes.dropFirst()),
                let opened = try? ChaChaPoly.open(box, using: chunkKey, authenticating: Self.associatedPrefix + Array(hash.utf8)),
                let end = opened.lastIndex(where: { $0 != 0 }), opened[end] == 0x80
            else {
                throw BlobError(.mismatch, "chunk \(index) of attachment \(manifest.sha256) is damaged or altered (\(path))")
            }
            bytes = Array(opened[opened.startIndex..<end])
        }
        guard bytes.count == manifest.length(ofChunk: index), !verifying || ContentHash.hex(of: bytes) == hash else {
            throw BlobError(
                .mismatch, "chunk \(index) of attachment \(manifest.sha256) is damaged: its bytes do not hash to the manifest's (\(path))")
        }
        return bytes
    }

    /// Deletes every chunk file of `manifest`; returns how many bytes of files were removed.
    @discardableResult
    public func remove(_ manifest: AttachmentManifest) -> Int64 {
        var freed: Int64 = 0
        for index in 0..<manifest.chunkCount {
            let path = chunkPath(manifest.sha256, index)
            var info = stat()
            if stat(path, &info) == 0, unlink(path) == 0 { freed += Int64(info.st_size) }
        }
        return freed
    }

    /// A staging folder for chunks whose file's hash is not known yet (while `attach` reads it).
    public func staging() throws -> StagedChunks {
        let folder = "\(root)/staging-\(UUID().uuidString.lowercased())"
        do {
            try FileManager.default.createDirectory(
                atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch { throw BlobError("cannot create \(folder): \(error.localizedDescription)") }
        return StagedChunks(store: self, folder: folder)
    }

    /// Every chunk file in the folder, and their total size (what `wipe` destroys).
    public func footprint() -> (files: Int, bytes: Int64) {
        guard let walker = FileManager.default.enumerator(atPath: root) else { return (0, 0) }
        var files = 0
        var bytes: Int64 = 0
        for case let name as String in walker {
            var info = stat()
            if stat("\(root)/\(name)", &info) == 0, (info.st_mode & S_IFMT) == S_IFREG {
                files += 1
                bytes += Int64(info.st_size)
            }
        }
        return (files, bytes)
    }
}

/// Chunks written while a file is read, before its hash (and so their names) is known; moved to
/// their places by ``adopt(_:)``, or removed when the attach fails.
public final class StagedChunks: @unchecked Sendable {
    let store: ReplicaBlobStore
    let folder: String
    private var chunkSize = 0

    init(store: ReplicaBlobStore, folder: String) {
        self.store = store
        self.folder = folder
    }

    public func write(_ index: Int, _ bytes: UnsafeRawBufferPointer, hash: String, chunkSize: Int) throws {
        try store.writeFile(try store.fileBytes(of: bytes, hash: hash, chunkSize: chunkSize), to: "\(folder)/\(index)")
    }

    /// Moves the staged chunks to the names of `manifest`'s file.
    public func adopt(_ manifest: AttachmentManifest) throws {
        for index in 0..<manifest.chunkCount {
            let target = store.chunkPath(manifest.sha256, index)
            try store.ensureFolder(target)
            guard rename("\(folder)/\(index)", target) == 0 else {
                throw BlobError("cannot store chunk \(index) of \(manifest.sha256): \(String(cString: strerror(errno)))")
            }
            FileBlobStorage.syncFolder((target as NSString).deletingLastPathComponent)
        }
        discard()
    }

    public func discard() { try? FileManager.default.removeItem(atPath: folder) }
}
