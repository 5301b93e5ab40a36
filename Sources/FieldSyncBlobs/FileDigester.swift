import Crypto
import FieldSyncCore
import Foundation

/// Reads a file once, in chunks, and makes its ``AttachmentManifest``: the whole-file SHA-256 and
/// each chunk's, while handing every chunk to the caller (to copy it into a blob store in the same
/// pass). Memory stays at one chunk whatever the file's size.
public enum FileDigester {
    /// - Parameter chunk: called with each chunk's index, bytes and hash, in order.
    public static func digest(
        file path: String, chunk: (Int, UnsafeRawBufferPointer, String) throws -> Void = { _, _, _ in }
    ) throws -> AttachmentManifest {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw BlobError("cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw BlobError("\(path) is not a regular file")
        }
        let size = Int64(info.st_size)
        guard size <= AttachmentContent.maximumSize else { throw BlobError("\(path) is larger than any attachment may be") }
        let chunkSize = AttachmentContent.chunkSize(forSize: size)
        let count = AttachmentContent.chunkCount(size: size, chunkSize: chunkSize)
        var whole = SHA256()
        var hashes: [String] = []
        hashes.reserveCapacity(count)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        var total: Int64 = 0
        for index in 0..<count {
            let wanted = Int(min(Int64(chunkSize), size - total))
            let got = try readFully(descriptor, into: buffer, count: wanted)
            guard got == wanted else { throw BlobError("\(path) changed while it was read (it is shorter than it was)") }
            let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<got])
            whole.update(bufferPointer: bytes)
            let hash = ContentHash.hex(of: bytes)
            hashes.append(hash)
            try chunk(index, bytes, hash)
            total += Int64(got)
        }
        // One byte more than fstat said: the file grew while it was read.
        guard try readFully(descriptor, into: buffer, count: 1) == 0 else {
            throw BlobError("\(path) changed while it was read (it grew)")
        }
        return AttachmentManifest(sha256: ContentHash.hex(whole.finalize()), size: size, chunkSize: chunkSize, chunks: hashes)
    }

    /// Reads until `count` bytes or the end of the file; returns how many were read.
    public static func readFully(_ descriptor: Int32, into buffer: UnsafeMutableRawBufferPointer, count: Int, at offset: Int64? = nil)
        throws
        -> Int
    {
        var done = 0
        while done < count {
            let n =
                offset.map { pread(descriptor, buffer.baseAddress! + done, count - done, off_t($0) + off_t(done)) }
                ?? read(descriptor, buffer.baseAddress! + done, count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw BlobError("read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Writes all of `bytes`, at `offset` when given.
    public static func writeFully(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64? = nil) throws {
        var done = 0
        while done < bytes.count {
            let n =
                offset.map { pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t($0) + off_t(done)) }
                ?? write(descriptor, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw BlobError(errno == ENOSPC ? "the disk is full" : "write failed: \(String(cString: strerror(errno)))")
            }
            done += n
        }
    }
}

/// A blob that cannot be read, written or verified; the message is one line for the person.
public struct BlobError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case io
        /// Another request is writing the same chunk, or committing the same upload.
        case busy
        /// An upload's offset is not what was received of the chunk.
        case offset(received: Int)
        /// Bytes that do not hash to what the manifest says.
        case mismatch
        /// More bytes than the chunk holds.
        case tooLarge
        /// No upload or blob of that hash.
        case notFound
    }

    public var kind: Kind
    public var description: String
    public init(_ kind: Kind = .io, _ description: String) {
        self.kind = kind
        self.description = description
    }

    public init(_ description: String) { self.init(.io, description) }

    /// Another upload of the same bytes, under another manifest, is under way (every backend).
    public static let uploadUnderWay = BlobError(
        .busy, "another upload of these bytes, under another manifest, is under way; try again once it is complete or expired")
}
