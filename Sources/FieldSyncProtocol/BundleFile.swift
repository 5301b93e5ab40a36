import Crypto
import FieldSyncCore

/// A bundle file: revisions carried between replicas without a network (`Protocol/sync-protocol.md`, "Bundles").
///
/// It is one JSON object with a SHA-256 checksum over the canonical form of every other member, so a
/// corrupt or truncated file is rejected whole.
public struct BundleFile: Sendable, Equatable {
    public static let format = "fieldsync-bundle"

    /// The node that wrote the bundle.
    public var from: NodeID
    /// The writer's knowledge when it wrote the bundle.
    public var knowledge: VersionVector
    /// Revisions in causal order.
    public var revisions: [Revision]
    public var created: Int64
    /// Public keys of the nodes whose revisions the bundle holds, so the reader can verify signatures.
    public var keys: [KeyEntry]

    public init(from: NodeID, knowledge: VersionVector, revisions: [Revision], created: Int64, keys: [KeyEntry] = []) {
        self.from = from
        self.knowledge = knowledge
        self.revisions = revisions
        self.created = created
        self.keys = keys.sorted { $0.node < $1.node }
    }

    private var body: [String: JSONValue] {
        [
            "format": .string(BundleFile.format), "protocol": .int(SyncProtocol.version), "from": .string(from.rawValue),
            "knowledge": knowledge.json, "created": .int(created), "revisions": .array(revisions.map(\.json)),
            "keys": .array(keys.map(\.json)),
        ]
    }

    /// The file's bytes: canonical JSON with the checksum member added.
    public var fileBytes: [UInt8] {
        var o = body
        o["checksum"] = .string(BundleFile.checksum(of: JSONValue.object(body).canonicalBytes))
        return JSONValue.object(o).canonicalBytes + [0x0A]
    }

    static func checksum(of bytes: [UInt8]) -> String {
        "sha256:"
            + SHA256.hash(data: bytes).map { byte in
                let hex = Array("0123456789abcdef")
                return String([hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            }.joined()
    }

    /// Reads and checks a bundle file. Every problem is a ``ProtocolError`` whose message says what is wrong.
    public init(fileBytes bytes: [UInt8]) throws(ProtocolError) {
        guard !bytes.isEmpty else { throw ProtocolError(.malformed, "the file is empty, not a FieldSync bundle") }
        let json: JSONValue
        do { json = try JSONValue(parsing: bytes) } catch {
            throw ProtocolError(.invalidJSON, "not a FieldSync bundle, or truncated or corrupt (\(error.description))")
        }
        guard var o = json.objectValue, o["format"]?.stringValue == BundleFile.format else {
            throw ProtocolError(.malformed, "not a FieldSync bundle (no \"format\": \"\(BundleFile.format)\" member)")
        }
        try SyncProtocol.checkVersion(o)
        guard let stated = o.removeValue(forKey: "checksum")?.stringValue else {
            throw ProtocolError(.checksumMismatch, "the bundle has no checksum")
        }
        guard BundleFile.checksum(of: JSONValue.object(o).canonicalBytes) == stated else {
            throw ProtocolError(.checksumMismatch, "checksum mismatch: the bundle was altered or damaged after it was written")
        }
        guard let fromText = o["from"]?.stringValue, let from = NodeID(fromText) else {
            throw ProtocolError(.malformed, "from: expected a node id")
        }
        guard case .int(let created)? = o["created"] else { throw ProtocolError(.malformed, "created: expected integer milliseconds") }
        guard let keysJSON = o["keys"]?.arrayValue else { throw ProtocolError(.malformed, "keys: expected an array of key entries") }
        var keys: [KeyEntry] = []
        for (i, key) in keysJSON.enumerated() { keys.append(try KeyEntry(json: key, at: "keys[\(i)]")) }
        self.init(
            from: from, knowledge: try SyncProtocol.knowledge(o["knowledge"], at: "knowledge"),
            revisions: try SyncProtocol.revisions(o["revisions"], limit: Int.max), created: created, keys: keys)
    }
}
