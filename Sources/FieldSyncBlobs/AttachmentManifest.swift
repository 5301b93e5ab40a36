import Crypto
import FieldSyncCore

/// The list of an attachment's chunk hashes (spec 19.2): a canonical JSON object addressed by its
/// own SHA-256, which a record's `content` register names. Every chunk a replica or the central
/// node stores is checked against it.
public struct AttachmentManifest: Hashable, Sendable {
    public static let format: Int64 = 1
    /// The most bytes a manifest may have: the request limit of every route.
    public static let maximumBytes = 8 * 1024 * 1024

    /// Lowercase hex SHA-256 of the whole file.
    public var sha256: String { didSet { hash = Self.address(sha256, size, chunkSize, chunks) } }
    public var size: Int64 { didSet { hash = Self.address(sha256, size, chunkSize, chunks) } }
    public var chunkSize: Int { didSet { hash = Self.address(sha256, size, chunkSize, chunks) } }
    /// Lowercase hex SHA-256 of each chunk, in order.
    public var chunks: [String] { didSet { hash = Self.address(sha256, size, chunkSize, chunks) } }
    /// The manifest's address: the hex SHA-256 of its canonical bytes (computed once: a large
    /// file's manifest is tens of kilobytes, and every chunk request names it).
    public private(set) var hash: String

    public init(sha256: String, size: Int64, chunkSize: Int, chunks: [String]) {
        self.sha256 = sha256
        self.size = size
        self.chunkSize = chunkSize
        self.chunks = chunks
        hash = Self.address(sha256, size, chunkSize, chunks)
    }

    static func json(_ sha256: String, _ size: Int64, _ chunkSize: Int, _ chunks: [String]) -> JSONValue {
        [
            "format": .int(Self.format), "sha256": .string(sha256), "size": .int(size), "chunk_size": .int(Int64(chunkSize)),
            "chunks": .array(chunks.map(JSONValue.string)),
        ]
    }

    static func address(_ sha256: String, _ size: Int64, _ chunkSize: Int, _ chunks: [String]) -> String {
        ContentHash.hex(of: json(sha256, size, chunkSize, chunks).canonicalBytes)
    }

    public var json: JSONValue { Self.json(sha256, size, chunkSize, chunks) }

    public var canonicalBytes: [UInt8] { json.canonicalBytes }

    /// The `content` register value that references this manifest.
    public var content: AttachmentContent { AttachmentContent(size: size, chunkSize: chunkSize, manifest: hash) }

    public var chunkCount: Int { chunks.count }

    /// The byte length of chunk `index`.
    public func length(ofChunk index: Int) -> Int {
        Int(max(0, min(Int64(chunkSize), size - Int64(index) * Int64(chunkSize))))
    }

    /// The offset of chunk `index` in the file.
    public func offset(ofChunk index: Int) -> Int64 { Int64(index) * Int64(chunkSize) }

    /// Parses and checks a manifest's bytes: canonical form, format, sizes and counts. A manifest
    /// that is not in canonical form is refused, so that one manifest has one address.
    public init(bytes: [UInt8]) throws(ManifestError) {
        guard bytes.count <= Self.maximumBytes else { throw ManifestError("a manifest has at most \(Self.maximumBytes) bytes") }
        let json: JSONValue
        do { json = try JSONValue(parsing: bytes) } catch { throw ManifestError("the manifest is not JSON: \(error)") }
        guard let o = json.objectValue, o.count == 5, o["format"] == .int(Self.format),
            let sha = o["sha256"]?.stringValue, Revision.isHash(sha),
            case .int(let size)? = o["size"], (0...AttachmentContent.maximumSize).contains(size),
            case .int(let chunk)? = o["chunk_size"], AttachmentContent.chunkSizes.contains(Int(chunk)), chunk & (chunk - 1) == 0,
            let items = o["chunks"]?.arrayValue
        else {
            throw ManifestError("expected a manifest {format: 1, sha256, size, chunk_size (256 KiB to 8 MiB, a power of two), chunks}")
        }
        let chunks = items.compactMap(\.stringValue).filter(Revision.isHash)
        guard chunks.count == items.count, chunks.count == AttachmentContent.chunkCount(size: size, chunkSize: Int(chunk)) else {
            throw ManifestError(
                "the manifest lists \(items.count) chunk hashes; \(size) bytes in chunks of \(chunk) make \(AttachmentContent.chunkCount(size: size, chunkSize: Int(chunk)))"
            )
        }
        self.init(sha256: sha, size: size, chunkSize: Int(chunk), chunks: chunks)
        guard canonicalBytes == bytes else { throw ManifestError("the manifest is not in canonical form (spec 3)") }
    }
}

/// A manifest that cannot be read or does not fit what references it.
public struct ManifestError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// SHA-256 in the written form the protocol uses: 64 lowercase hex digits.
public enum ContentHash {
    public static func hex(of bytes: some Sequence<UInt8>) -> String {
        var hasher = SHA256()
        hasher.update(data: Array(bytes))
        return hex(hasher.finalize())
    }

    /// The same, without copying an array.
    public static func hex(of bytes: [UInt8]) -> String { bytes.withUnsafeBytes { hex(of: $0) } }

    public static func hex(of buffer: UnsafeRawBufferPointer) -> String {
        var hasher = SHA256()
        hasher.update(bufferPointer: buffer)
        return hex(hasher.finalize())
    }

    public static func hex(_ digest: SHA256.Digest) -> String { hexDigits(digest) }

    /// Any bytes as lowercase hex digits.
    public static func hexDigits(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
