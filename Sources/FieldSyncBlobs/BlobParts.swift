import Crypto
import FieldSyncCore
import Foundation

/// The attachment sidecar of a bundle (spec 12.6): a folder of part files, each at most 1 GiB
/// (FAT32 caps a file at 4 GiB), each holding every manifest of the export and then as many whole
/// chunks as fit. A part is self-contained, so any subset of the parts imports on its own, and
/// partial imports add up.
///
/// A part is the magic line, a format byte, a sealing byte and, when sealed, the caller's key
/// parameters (for a bundle passphrase: scrypt cost and salt), then records. A record is a 4-byte
/// big-endian length and that many bytes: in clear, a 4-byte header length, the header's
/// canonical JSON and the payload; sealed, the same under ChaCha20-Poly1305 (a fresh nonce, the
/// part's header as associated data), padded with Padmé.
public enum BlobParts {
    public static let magic = Array("fieldsync-blob-part\n".utf8)
    public static let format: UInt8 = 1
    public static let maximumPartBytes: Int64 = 1 << 30
    public static let fileExtension = "fsblobs"

    /// `part-0001.fsblobs`, `part-0002.fsblobs`…
    public static func partName(_ number: Int) -> String {
        "part-" + String(repeating: "0", count: max(0, 4 - String(number).count)) + String(number) + "." + fileExtension
    }

    /// The part files in `folder`, in order.
    public static func parts(in folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter {
            $0.hasPrefix("part-") && $0.hasSuffix("." + fileExtension)
        }.sorted().map { "\(folder)/\($0)" }
    }

    /// One record of a part.
    public enum Record: Sendable {
        case manifest([UInt8])
        case chunk(sha256: String, index: Int, bytes: [UInt8])
    }

    /// The key parameters of a sealed part (nil: a plaintext part), read before its key is derived.
    public static func sealingParameters(of path: String) throws -> [UInt8]? {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw BlobError("cannot read \(path)") }
        defer { try? handle.close() }
        let head = [UInt8](try Self.read(handle, magic.count + 2 + 1, path))
        guard head.count >= magic.count + 2, Array(head.prefix(magic.count)) == magic, head[magic.count] == format else {
            throw BlobError("\(path) is not a FieldSync attachment part of a format this version reads")
        }
        guard head[magic.count + 1] != 0 else { return nil }
        guard head[magic.count + 1] == 1 else { throw BlobError("\(path) is sealed in a way this version does not know") }
        guard head.count == magic.count + 3 else { throw BlobError("\(path) is truncated") }
        let length = Int(head[magic.count + 2])
        let parameters = [UInt8](try Self.read(handle, length, path))
        guard parameters.count == length else { throw BlobError("\(path) is truncated") }
        return parameters
    }

    /// Up to `count` bytes; a read error (a flaky stick) is a ``BlobError``, never a trap.
    static func read(_ handle: FileHandle, _ count: Int, _ path: String) throws -> Data {
        do { return try handle.read(upToCount: count) ?? Data() } catch {
            throw BlobError("cannot read \(path): \(error.localizedDescription)")
        }
    }

    static func header(sealing parameters: [UInt8]?) -> [UInt8] {
        guard let parameters else { return magic + [format, 0] }
        return magic + [format, 1, UInt8(parameters.count)] + parameters
    }

    static func bigEndian(_ value: Int) -> [UInt8] {
        [UInt8(value >> 24 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    static func integer(_ bytes: ArraySlice<UInt8>) -> Int { bytes.reduce(0) { $0 << 8 | Int($1) } }

    /// Reads every record of a part in order. A damaged record ends the part with an error after
    /// the records before it were handed over (each chunk is checked by its hash anyway).
    public static func read(_ path: String, key: SymmetricKey?, each: (Record) throws -> Void) throws {
        let parameters = try sealingParameters(of: path)
        guard (parameters == nil) == (key == nil) else {
            throw BlobError(parameters == nil ? "\(path) is a plaintext part" : "\(path) is sealed: give the bundle passphrase")
        }
        let partHeader = header(sealing: parameters)
        guard let handle = FileHandle(forReadingAtPath: path) else { throw BlobError("cannot read \(path)") }
        defer { try? handle.close() }
        _ = try Self.read(handle, partHeader.count, path)
        while true {
            let lengthBytes = [UInt8](try Self.read(handle, 4, path))
            if lengthBytes.isEmpty { return }
            guard lengthBytes.count == 4 else { throw BlobError("\(path) ends inside a record: the part is truncated") }
            let length = integer(lengthBytes[...])
            guard length <= AttachmentContent.chunkSizes.upperBound + AttachmentManifest.maximumBytes + 4096 else {
                throw BlobError("\(path) has a record of \(length) bytes, more than any record may have: the part is damaged")
            }
            var record = [UInt8](try Self.read(handle, length, path))
            guard record.count == length else { throw BlobError("\(path) ends inside a record: the part is truncated") }
            if let key {
                guard let box = try? ChaChaPoly.SealedBox(combined: record),
                    let opened = try? ChaChaPoly.open(box, using: key, authenticating: partHeader)
                else { throw BlobError("\(path) does not open: wrong bundle passphrase, or the part was altered or damaged") }
                record = Array(opened)
            }
            guard record.count >= 4 else { throw BlobError("\(path) has a damaged record") }
            let headerLength = integer(record[0..<4])
            guard headerLength <= record.count - 4,
                let header = try? JSONValue(parsing: record[4..<4 + headerLength]),
                case .int(let payloadLength)? = header["length"], payloadLength >= 0, 4 + headerLength + Int(payloadLength) <= record.count
            else { throw BlobError("\(path) has a damaged record header") }
            let payload = Array(record[(4 + headerLength)..<(4 + headerLength + Int(payloadLength))])
            switch header["kind"]?.stringValue {
            case "manifest": try each(.manifest(payload))
            case "chunk":
                guard let sha = header["sha256"]?.stringValue, Revision.isHash(sha), case .int(let index)? = header["index"], index >= 0
                else { throw BlobError("\(path) has a damaged chunk header") }
                try each(.chunk(sha256: sha, index: Int(index), bytes: payload))
            default: throw BlobError("\(path) has a record of a kind this version does not know")
            }
        }
    }
}

/// Writes a sidecar's parts: every manifest at the start of every part, then chunks until the
/// part would pass its size limit. Each part is written to a temporary name and renamed.
public final class BlobPartWriter {
    let folder: String
    let key: SymmetricKey?
    let partHeader: [UInt8]
    let maximumPartBytes: Int64
    private var manifests: [[UInt8]] = []
    private var handle: FileHandle?
    private var current = ""
    private var written: Int64 = 0
    public private(set) var parts = 0
    public private(set) var totalBytes: Int64 = 0

    /// - Parameter sealing: the key and the parameters a reader derives it from; nil writes clear parts.
    public init(folder: String, sealing: (key: SymmetricKey, parameters: [UInt8])?, maximumPartBytes: Int64 = BlobParts.maximumPartBytes)
        throws
    {
        self.folder = folder
        key = sealing?.key
        partHeader = BlobParts.header(sealing: sealing?.parameters)
        self.maximumPartBytes = maximumPartBytes
        do {
            try FileManager.default.createDirectory(
                atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch { throw BlobError("cannot create \(folder): \(error.localizedDescription)") }
        // Parts of an earlier export to the same place would mix with these.
        for old in BlobParts.parts(in: folder) { try? FileManager.default.removeItem(atPath: old) }
    }

    /// Manifests go into every part; give them all before the first chunk.
    public func add(manifest: AttachmentManifest) { manifests.append(manifest.canonicalBytes) }

    func record(header: JSONValue, payload: [UInt8]) throws -> [UInt8] {
        let headerBytes = header.canonicalBytes
        var plain = BlobParts.bigEndian(headerBytes.count) + headerBytes + payload
        if let key {
            plain += [UInt8](repeating: 0, count: Padme.paddedLength(plain.count) - plain.count)
            plain = [UInt8](try ChaChaPoly.seal(plain, using: key, authenticating: partHeader).combined)
        }
        return BlobParts.bigEndian(plain.count) + plain
    }

    private func write(_ bytes: [UInt8]) throws {
        do { try handle?.write(contentsOf: bytes) } catch {
            throw BlobError("cannot write \(current): \(error.localizedDescription) (is the stick full?)")
        }
        written += Int64(bytes.count)
        totalBytes += Int64(bytes.count)
    }

    private func startPart() throws {
        try closePart()
        parts += 1
        current = "\(folder)/\(BlobParts.partName(parts))"
        guard FileManager.default.createFile(atPath: current + ".partial", contents: nil, attributes: [.posixPermissions: 0o600]),
            let opened = FileHandle(forWritingAtPath: current + ".partial")
        else { throw BlobError("cannot write \(current)") }
        handle = opened
        written = 0
        try write(partHeader)
        for manifest in manifests {
            try write(try record(header: ["kind": "manifest", "length": .int(Int64(manifest.count))], payload: manifest))
        }
    }

    private func closePart() throws {
        guard let handle else { return }
        try handle.synchronize()
        try handle.close()
        self.handle = nil
        guard rename(current + ".partial", current) == 0 else { throw BlobError("cannot write \(current)") }
    }

    public func add(chunk bytes: [UInt8], index: Int, of manifest: AttachmentManifest) throws {
        let entry = try record(
            header: ["kind": "chunk", "sha256": .string(manifest.sha256), "index": .int(Int64(index)), "length": .int(Int64(bytes.count))],
            payload: bytes)
        if handle == nil || written + Int64(entry.count) > maximumPartBytes { try startPart() }
        try write(entry)
    }

    /// Closes the last part (writing one with only manifests when no chunk was added).
    public func finish() throws {
        if handle == nil, !manifests.isEmpty { try startPart() }
        try closePart()
    }
}
