import Crypto
import FieldSyncCore
import Foundation
import Synchronization

/// ``BlobStorage`` in a folder (`serve --blobs DIR`):
/// - `objects/ab/<sha256>`: complete blobs, written once (to a temporary name, fsynced, renamed)
///   and never changed;
/// - `uploads/<sha256>.data`: an upload being assembled in place, each chunk at its offset;
/// - `uploads/<sha256>.progress`: four bytes per chunk, how many of its bytes arrived.
///
/// An upload is of exactly one manifest (`uploads/<sha256>.manifest` names it): a request under
/// another manifest of the same bytes is refused until it is complete or expired, so no one can
/// write into another's upload. One process writes one chunk at a time, and a commit runs only
/// while no chunk is being written: others are told it is busy.
///
/// A chunk's writer is whoever opened it last: a client that reconnects after a dropped link takes
/// the chunk over from its own dead request at once (a server may not notice a dead connection for
/// minutes), and the older request's next write is refused. Each write and its progress update
/// happen under the claims' lock, so the newer writer reads a progress no older one changes after.
public final class FileBlobStorage: BlobStorage {
    public let root: String
    private let claims = Mutex(Claims())

    /// Who writes what: the newest writer of each chunk, and the uploads being started or committed.
    struct Claims {
        var chunkWriters: [String: UInt64] = [:]
        var whole: Set<String> = []
        var next: UInt64 = 0

        func touches(_ sha: String) -> Bool { whole.contains(sha) || chunkWriters.keys.contains { $0.hasPrefix(sha) } }
    }

    public init(root: String) throws {
        self.root = root
        for folder in [root, root + "/objects", root + "/uploads"] {
            do {
                try FileManager.default.createDirectory(
                    atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch { throw BlobError("cannot create the blob folder \(folder): \(error.localizedDescription)") }
        }
    }

    func objectPath(_ sha: String) -> String { "\(root)/objects/\(sha.prefix(2))/\(sha)" }
    func dataPath(_ sha: String) -> String { "\(root)/uploads/\(sha).data" }
    func progressPath(_ sha: String) -> String { "\(root)/uploads/\(sha).progress" }
    func manifestPath(_ sha: String) -> String { "\(root)/uploads/\(sha).manifest" }

    /// The manifest hash the upload of `sha` is of, when one is under way.
    func uploadManifest(_ sha: String) -> String? {
        FileManager.default.contents(atPath: manifestPath(sha)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Refuses a request under another manifest than the upload's.
    func checkUpload(_ manifest: AttachmentManifest) throws {
        if let current = uploadManifest(manifest.sha256), current != manifest.hash {
            throw BlobError.uploadUnderWay
        }
    }

    public func hasBlob(_ sha: String) -> Bool { FileManager.default.fileExists(atPath: objectPath(sha)) }

    public func state(of manifest: AttachmentManifest) async throws -> BlobState {
        if hasBlob(manifest.sha256) { return .complete }
        guard uploadManifest(manifest.sha256) == manifest.hash, let progress = try readProgress(manifest) else { return .absent }
        var missing: [Int] = []
        var received: [Int: Int] = [:]
        for index in 0..<manifest.chunkCount where !isReceived(progress, index, of: manifest) {
            missing.append(index)
            let held = Self.bytesHeld(progress[index])
            if held > 0, held < manifest.length(ofChunk: index) { received[index] = held }
        }
        return .partial(missing: missing, received: received)
    }

    /// A progress entry's top bit: the chunk's hash was checked against the manifest when its last
    /// byte arrived. Only such chunks count as received, so a commit that finds the whole file right
    /// knows every listed chunk hash is right too. The low 31 bits: how many bytes arrived.
    static let verifiedBit = 0x8000_0000

    static func bytesHeld(_ entry: Int) -> Int { entry & (verifiedBit - 1) }

    private func isReceived(_ progress: [Int], _ index: Int, of manifest: AttachmentManifest) -> Bool {
        progress[index] & Self.verifiedBit != 0 && Self.bytesHeld(progress[index]) == manifest.length(ofChunk: index)
    }

    private func readProgress(_ manifest: AttachmentManifest) throws -> [Int]? {
        guard let data = FileManager.default.contents(atPath: progressPath(manifest.sha256)) else { return nil }
        let bytes = [UInt8](data)
        return (0..<manifest.chunkCount).map { index in
            let at = index * 4
            guard at + 4 <= bytes.count else { return 0 }
            return Int(UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24)
        }
    }

    func writeProgress(_ sha: String, index: Int, received: Int, into progress: Int32? = nil) throws {
        let descriptor = progress ?? open(progressPath(sha), O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw BlobError("cannot update the upload of \(sha): \(String(cString: strerror(errno)))") }
        defer { if progress == nil { close(descriptor) } }
        let value = UInt32(truncatingIfNeeded: received)
        let bytes = [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 24)]
        try bytes.withUnsafeBytes { try FileDigester.writeFully(descriptor, $0, at: Int64(index * 4)) }
    }

    /// Claims the whole upload of `sha` (a start or a commit): refused while another start or
    /// commit runs. `revokingWriters`: a commit, which runs only once every chunk arrived, so any
    /// chunk writer left is a dead request; its next write is refused.
    private func claim(_ sha: String, revokingWriters: Bool = false) throws {
        let claimed = claims.withLock { state -> Bool in
            guard !state.whole.contains(sha) else { return false }
            if revokingWriters {
                for key in state.chunkWriters.keys where key.hasPrefix(sha) { state.chunkWriters[key] = nil }
            } else if state.chunkWriters.keys.contains(where: { $0.hasPrefix(sha) }) {
                return false
            }
            state.whole.insert(sha)
            return true
        }
        guard claimed else { throw BlobError(.busy, "another request is writing this attachment; try again") }
    }

    private func release(_ sha: String) { _ = claims.withLock { $0.whole.remove(sha) } }

    /// Makes the caller the writer of chunk `key` (`sha/index`), taking it over from any older one.
    private func claimChunk(_ key: String) throws -> UInt64 {
        let sha = String(key.prefix(64))
        let writer = claims.withLock { state -> UInt64? in
            guard !state.whole.contains(sha) else { return nil }
            state.next += 1
            state.chunkWriters[key] = state.next
            return state.next
        }
        guard let writer else { throw BlobError(.busy, "this attachment is being committed or started; try again") }
        return writer
    }

    func releaseChunk(_ key: String, writer: UInt64) {
        claims.withLock { state in if state.chunkWriters[key] == writer { state.chunkWriters[key] = nil } }
    }

    /// Runs one write of chunk `key` if `writer` still owns it, under the claims' lock.
    func whileOwning<T>(_ key: String, writer: UInt64, _ body: () throws -> T) throws -> T {
        try claims.withLock { state in
            guard state.chunkWriters[key] == writer else {
                throw BlobError(.busy, "a newer request took this chunk over (the client reconnected)")
            }
            return try body()
        }
    }

    public func openChunk(_ index: Int, of manifest: AttachmentManifest, at offset: Int) async throws -> any ChunkUpload {
        let sha = manifest.sha256
        guard (0..<manifest.chunkCount).contains(index) else { throw BlobError(.notFound, "chunk \(index) is not in the manifest") }
        guard !hasBlob(sha) else {
            throw BlobError(.offset(received: manifest.length(ofChunk: index)), "the central node already holds this attachment")
        }
        let key = "\(sha)/\(index)"
        let writer = try claimChunk(key)
        do {
            try checkUpload(manifest)
            guard uploadManifest(sha) != nil, let progress = try readProgress(manifest) else {
                throw BlobError(
                    .offset(received: 0), "no upload of \(sha) is under way (it expired, or never started): send its manifest again")
            }
            let held = Self.bytesHeld(progress[index])
            // A resend from an older offset is fine (a dead request wrote more meanwhile): the bytes
            // already held are skipped. One from beyond them would leave a gap.
            guard offset <= held else {
                throw BlobError(.offset(received: held), "chunk \(index): \(held) of its bytes arrived so far, fewer than \(offset)")
            }
            return try FileChunkUpload(
                storage: self, manifest: manifest, index: index, offset: held, skipping: held - offset, writer: writer)
        } catch {
            releaseChunk(key, writer: writer)
            throw error
        }
    }

    /// The upload's files: a sparse data file of the full size, and zeroed progress.
    public func beginUpload(_ manifest: AttachmentManifest) async throws {
        let sha = manifest.sha256
        guard !hasBlob(sha) else { return }
        // One starter at a time, and none while a chunk or the commit is being written.
        try claim(sha)
        defer { release(sha) }
        try checkUpload(manifest)
        guard uploadManifest(sha) == nil else { return }
        let data = open(dataPath(sha), O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard data >= 0 else { throw BlobError("cannot start an upload in \(root): \(String(cString: strerror(errno)))") }
        defer { close(data) }
        guard ftruncate(data, off_t(manifest.size)) == 0 else {
            throw BlobError("cannot size the upload of \(sha): \(String(cString: strerror(errno)))")
        }
        let temporary = progressPath(sha) + ".new"
        guard
            FileManager.default.createFile(
                atPath: temporary, contents: Data(count: manifest.chunkCount * 4), attributes: [.posixPermissions: 0o600]),
            rename(temporary, progressPath(sha)) == 0
        else { throw BlobError("cannot start an upload in \(root)") }
        // Written last: an upload exists once its manifest is named.
        guard
            FileManager.default.createFile(
                atPath: manifestPath(sha), contents: Data(manifest.hash.utf8), attributes: [.posixPermissions: 0o600])
        else { throw BlobError("cannot start an upload in \(root)") }
    }

    func finishedChunk(_ chunk: FileChunkUpload) { releaseChunk(chunk.key, writer: chunk.writer) }

    public func commit(_ manifest: AttachmentManifest) async throws -> CommitResult {
        let sha = manifest.sha256
        if hasBlob(sha) {
            var info = stat()
            guard stat(objectPath(sha), &info) == 0, Int64(info.st_size) == manifest.size else {
                throw BlobError(.mismatch, "the central node holds \(sha) with another size than this manifest says")
            }
            return .committed
        }
        try checkUpload(manifest)
        guard uploadManifest(sha) != nil, let progress = try readProgress(manifest) else {
            return .incomplete(missing: Array(0..<manifest.chunkCount))
        }
        let missing = (0..<manifest.chunkCount).filter { !isReceived(progress, $0, of: manifest) }
        guard missing.isEmpty else { return .incomplete(missing: missing) }
        try claim(sha, revokingWriters: true)
        defer { release(sha) }
        let descriptor = open(dataPath(sha), O_RDWR | O_CLOEXEC)
        guard descriptor >= 0 else { throw BlobError("cannot read the upload of \(sha): \(String(cString: strerror(errno)))") }
        var closed = false
        defer { if !closed { close(descriptor) } }
        // The whole file re-hashed from what is on disk (spec 19.4.3). Only when it does not match
        // are the chunks hashed one by one, to name those to send again: a match of the whole
        // already proves every byte.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: manifest.chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        func pass(chunks: Bool) throws -> (whole: String, bad: [Int]) {
            var whole = SHA256()
            var bad: [Int] = []
            for index in 0..<manifest.chunkCount {
                let length = manifest.length(ofChunk: index)
                let got = try FileDigester.readFully(descriptor, into: buffer, count: length, at: manifest.offset(ofChunk: index))
                let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<got])
                whole.update(bufferPointer: bytes)
                if got != length || chunks && ContentHash.hex(of: bytes) != manifest.chunks[index] { bad.append(index) }
            }
            return (ContentHash.hex(whole.finalize()), bad)
        }
        var checked = try pass(chunks: false)
        if checked.whole != sha || !checked.bad.isEmpty { checked = try pass(chunks: true) }
        if !checked.bad.isEmpty {
            for index in checked.bad { try writeProgress(sha, index: index, received: 0) }
            return .mismatch(chunks: checked.bad)
        }
        guard checked.whole == sha else {
            // Every chunk matches its listed hash, yet the whole does not: the manifest lied.
            for path in [dataPath(sha), progressPath(sha), manifestPath(sha)] { try? FileManager.default.removeItem(atPath: path) }
            throw BlobError(.mismatch, "the chunks match the manifest but the file's SHA-256 is not \(sha): the manifest is wrong")
        }
        guard fsync(descriptor) == 0 else { throw BlobError("cannot flush the upload of \(sha) to disk") }
        close(descriptor)
        closed = true
        let folder = "\(root)/objects/\(sha.prefix(2))"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        chmod(dataPath(sha), 0o400)
        guard rename(dataPath(sha), objectPath(sha)) == 0 else {
            throw BlobError("cannot store the blob \(sha): \(String(cString: strerror(errno)))")
        }
        Self.syncFolder(folder)
        try? FileManager.default.removeItem(atPath: progressPath(sha))
        try? FileManager.default.removeItem(atPath: manifestPath(sha))
        return .committed
    }

    /// fsync of a folder, so that a rename in it survives a crash.
    public static func syncFolder(_ path: String) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }

    public func readChunk(_ index: Int, of manifest: AttachmentManifest) async throws -> [UInt8] {
        guard (0..<manifest.chunkCount).contains(index) else { throw BlobError(.notFound, "chunk \(index) is not in the manifest") }
        let descriptor = open(objectPath(manifest.sha256), O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw BlobError(.notFound, "the central node holds no complete copy of \(manifest.sha256)") }
        defer { close(descriptor) }
        let length = manifest.length(ofChunk: index)
        var bytes = [UInt8](repeating: 0, count: length)
        let got = try bytes.withUnsafeMutableBytes {
            try FileDigester.readFully(descriptor, into: $0, count: length, at: manifest.offset(ofChunk: index))
        }
        guard got == length else {
            throw BlobError("the blob \(manifest.sha256) is shorter than its manifest says: run `fieldsync verify`")
        }
        return bytes
    }

    public func expireUploads(untouchedSince cutoff: Double) async throws -> [String] {
        let folder = root + "/uploads"
        var expired: [String] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] where name.hasSuffix(".progress") {
            let sha = String(name.dropLast(".progress".count))
            // Data and progress are both written by every chunk; the later of the two counts.
            let times = [dataPath(sha), progressPath(sha)].compactMap { path -> Double? in
                var info = stat()
                return stat(path, &info) == 0 ? Double(info.st_mtim.tv_sec) : nil
            }
            guard let touched = times.max(), touched < cutoff, !claims.withLock({ $0.touches(sha) }) else { continue }
            for path in [dataPath(sha), progressPath(sha), manifestPath(sha)] { try? FileManager.default.removeItem(atPath: path) }
            expired.append(sha)
        }
        return expired
    }

    public func verifyAll() async throws -> BlobVerification {
        var result = BlobVerification()
        let objects = root + "/objects"
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 * 1024 * 1024, alignment: 16)
        defer { buffer.deallocate() }
        for folder in ((try? FileManager.default.contentsOfDirectory(atPath: objects)) ?? []).sorted() {
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: "\(objects)/\(folder)")) ?? []).sorted()
            where Revision.isHash(name) {
                let descriptor = open("\(objects)/\(folder)/\(name)", O_RDONLY | O_CLOEXEC)
                guard descriptor >= 0 else {
                    result.damaged.append(name)
                    continue
                }
                var hasher = SHA256()
                while true {
                    let got = (try? FileDigester.readFully(descriptor, into: buffer, count: buffer.count)) ?? -1
                    if got <= 0 { break }
                    hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<got]))
                    result.bytes += Int64(got)
                }
                close(descriptor)
                result.checked += 1
                if ContentHash.hex(hasher.finalize()) != name { result.damaged.append(name) }
            }
        }
        return result
    }
}

/// One chunk written into an upload's data file, its hash checked as the bytes stream in.
/// `@unchecked Sendable`: one request owns it, and every write checks, under the storage's lock,
/// that no newer request took the chunk over.
final class FileChunkUpload: ChunkUpload, @unchecked Sendable {
    let storage: FileBlobStorage
    let manifest: AttachmentManifest
    let index: Int
    let writer: UInt64
    var key: String { "\(manifest.sha256)/\(index)" }
    private let descriptor: Int32
    /// The progress file, open for the chunk's life: one small write per arriving buffer.
    private let progress: Int32
    private var hasher = SHA256()
    private(set) var received: Int
    /// Bytes at the start of the body that the storage holds already.
    private var skipping: Int
    private var done = false

    init(storage: FileBlobStorage, manifest: AttachmentManifest, index: Int, offset: Int, skipping: Int, writer: UInt64) throws {
        self.storage = storage
        self.manifest = manifest
        self.index = index
        self.writer = writer
        self.received = offset
        self.skipping = skipping
        descriptor = open(storage.dataPath(manifest.sha256), O_RDWR | O_CLOEXEC)
        progress = open(storage.progressPath(manifest.sha256), O_WRONLY | O_CLOEXEC)
        // On a throw from here on the instance is complete, so deinit closes what opened.
        guard descriptor >= 0, progress >= 0 else {
            throw BlobError("cannot write the upload of \(manifest.sha256): \(String(cString: strerror(errno)))")
        }
        // A resumed chunk: its first bytes are read back, so the hash covers the whole chunk.
        if offset > 0 {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: offset, alignment: 16)
            defer { buffer.deallocate() }
            let got = try FileDigester.readFully(descriptor, into: buffer, count: offset, at: manifest.offset(ofChunk: index))
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<got]))
        }
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
        if progress >= 0 { close(progress) }
        if !done { storage.finishedChunk(self) }
    }

    func append(_ all: UnsafeRawBufferPointer) throws {
        let skipped = min(skipping, all.count)
        skipping -= skipped
        let bytes = UnsafeRawBufferPointer(rebasing: all[skipped...])
        guard received + bytes.count <= manifest.length(ofChunk: index) else {
            throw BlobError(.tooLarge, "chunk \(index) has \(manifest.length(ofChunk: index)) bytes; more were sent")
        }
        let at = manifest.offset(ofChunk: index) + Int64(received)
        let total = received + bytes.count
        try storage.whileOwning(key, writer: writer) {
            try FileDigester.writeFully(descriptor, bytes, at: at)
            try storage.writeProgress(manifest.sha256, index: index, received: total, into: progress)
        }
        hasher.update(bufferPointer: bytes)
        received = total
    }

    func finish() throws -> Bool {
        defer {
            done = true
            storage.finishedChunk(self)
        }
        let length = manifest.length(ofChunk: index)
        guard received == length else { return false }
        guard ContentHash.hex(hasher.finalize()) == manifest.chunks[index] else {
            try? storage.whileOwning(key, writer: writer) { try storage.writeProgress(manifest.sha256, index: index, received: 0) }
            throw BlobError(.mismatch, "chunk \(index)'s bytes do not hash to \(manifest.chunks[index]) (the manifest's); it was dropped")
        }
        try storage.whileOwning(key, writer: writer) {
            try storage.writeProgress(manifest.sha256, index: index, received: length | FileBlobStorage.verifiedBit)
        }
        return true
    }

    func abandon() {
        done = true
        storage.finishedChunk(self)
    }
}
