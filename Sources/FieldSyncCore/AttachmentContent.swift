/// What a record's `attachments.<sha256>.content` register holds: the size of the original bytes,
/// the chunk size and the SHA-256 of the manifest that lists the chunks (spec 19.1). It depends on
/// the bytes alone, so two documenters attaching the same file write equal values.
public struct AttachmentContent: Hashable, Sendable {
    public var size: Int64
    public var chunkSize: Int
    /// Lowercase hex SHA-256 of the manifest's canonical JSON.
    public var manifest: String

    /// The chunk sizes a reader accepts (spec 19.2).
    public static let chunkSizes = (256 * 1024)...(8 * 1024 * 1024)
    /// The chunk size a writer picks for files up to 16 GiB; larger files double it.
    public static let defaultChunkSize = 1024 * 1024
    /// Writers double the chunk size until a file has at most this many chunks.
    public static let maximumChunkCountBeforeGrowing: Int64 = 16384
    /// The largest size any FieldSync attachment may have: 512 GiB, 65,536 chunks of 8 MiB, whose
    /// manifest stays well under the 8 MiB every request is limited to.
    public static let maximumSize: Int64 = 512 << 30

    public init(size: Int64, chunkSize: Int, manifest: String) {
        self.size = size
        self.chunkSize = chunkSize
        self.manifest = manifest
    }

    /// The chunk size a writer uses for `size` bytes: 1 MiB, doubled while the file would have more
    /// than 16,384 chunks, at most 8 MiB. A function of the size alone.
    public static func chunkSize(forSize size: Int64) -> Int {
        var chunk = defaultChunkSize
        while chunk < chunkSizes.upperBound, (size + Int64(chunk) - 1) / Int64(chunk) > maximumChunkCountBeforeGrowing { chunk *= 2 }
        return chunk
    }

    /// How many chunks `size` bytes make at `chunkSize` (one empty chunk for an empty file).
    public static func chunkCount(size: Int64, chunkSize: Int) -> Int {
        size == 0 ? 1 : Int((size + Int64(chunkSize) - 1) / Int64(chunkSize))
    }

    public var chunkCount: Int { Self.chunkCount(size: size, chunkSize: chunkSize) }

    /// The byte length of chunk `index`.
    public func length(ofChunk index: Int) -> Int {
        let start = Int64(index) * Int64(chunkSize)
        return Int(max(0, min(Int64(chunkSize), size - start)))
    }

    public var json: JSONValue {
        ["size": .int(size), "chunk_size": .int(Int64(chunkSize)), "manifest": .string(manifest)]
    }

    /// Parses the register's value; nil unless it has exactly these members, in range.
    public init?(json: JSONValue) {
        guard let o = json.objectValue, o.count == 3, case .int(let size)? = o["size"], (0...Self.maximumSize).contains(size),
            case .int(let chunk)? = o["chunk_size"], Self.chunkSizes.contains(Int(chunk)), chunk & (chunk - 1) == 0,
            let manifest = o["manifest"]?.stringValue, Revision.isHash(manifest)
        else { return nil }
        self.init(size: size, chunkSize: Int(chunk), manifest: manifest)
    }
}
