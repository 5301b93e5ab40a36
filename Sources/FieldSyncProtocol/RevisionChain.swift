import Crypto
import FieldSyncCore

/// The per-node hash chain of revision format 2 (`Protocol/sync-protocol.md`, 4.5): each revision's
/// `prev` is the SHA-256 of the stored canonical text of its node's revision at `counter - 1`.
public enum RevisionChain {
    /// The lowercase hex SHA-256 of a revision's canonical text, `sig` included.
    public static func hash(ofText text: String) -> String {
        let digest = SHA256.hash(data: Array(text.utf8))
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in digest {
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// One node's chain position as a central node holds it: the hash of its revision at `counter`
/// (nil when `counter` is 0). The answer to a chain probe (`GET /v1/knowledge?node=&counter=`).
public struct ChainProbe: Sendable, Equatable {
    public var node: NodeID
    public var counter: UInt64
    public var hash: String?

    public init(node: NodeID, counter: UInt64, hash: String?) {
        self.node = node
        self.counter = counter
        self.hash = hash
    }

    public var json: JSONValue {
        ["node": .string(node.rawValue), "counter": .int(Int64(counter)), "hash": hash.map(JSONValue.string) ?? .null]
    }

    public init(json: JSONValue) throws(ProtocolError) {
        guard let text = json["node"]?.stringValue, let node = NodeID(text) else {
            throw ProtocolError(.malformed, "chain.node: expected a node id")
        }
        guard case .int(let counter)? = json["counter"], counter >= 0 else {
            throw ProtocolError(.malformed, "chain.counter: expected an integer >= 0")
        }
        var hash: String?
        switch json["hash"] {
        case .string(let h)? where Revision.isHash(h) && counter > 0: hash = h
        case .null? where counter == 0: hash = nil
        default: throw ProtocolError(.malformed, "chain.hash: expected 64 lowercase hex digits, or null at counter 0")
        }
        self.init(node: node, counter: UInt64(counter), hash: hash)
    }
}
