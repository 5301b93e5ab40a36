import FieldSyncCore

/// `GET /v1/knowledge` response: the server's node id and version vector.
public struct KnowledgeResponse: Sendable, Equatable {
    public var node: NodeID
    public var knowledge: VersionVector
    /// The answer to a chain probe, when the request asked for one (`?node=N&counter=C`).
    public var chain: ChainProbe?

    public init(node: NodeID, knowledge: VersionVector, chain: ChainProbe? = nil) {
        self.node = node
        self.knowledge = knowledge
        self.chain = chain
    }

    public var json: JSONValue {
        var o: [String: JSONValue] = ["protocol": .int(SyncProtocol.version), "node": .string(node.rawValue), "knowledge": knowledge.json]
        if let chain { o["chain"] = chain.json }
        return .object(o)
    }

    public init(json: JSONValue) throws(ProtocolError) {
        let o = try SyncProtocol.object(json, "knowledge response")
        try SyncProtocol.checkVersion(o)
        guard let text = o["node"]?.stringValue, let node = NodeID(text) else {
            throw ProtocolError(.malformed, "node: expected a node id")
        }
        let chain: ChainProbe? = try o["chain"].map { json throws(ProtocolError) in try ChainProbe(json: json) }
        self.init(node: node, knowledge: try SyncProtocol.knowledge(o["knowledge"], at: "knowledge"), chain: chain)
    }
}

/// `POST /v1/push` request: a batch of revisions in causal order, stored all or nothing.
public struct PushRequest: Sendable, Equatable {
    /// The pushing replica's node id (it may relay revisions of other nodes).
    public var node: NodeID
    public var revisions: [Revision]
    /// Where the batch stands in a pipelined push (spec 8.3.1), if the client sends several at once.
    public var sequence: PushSequence?

    public init(node: NodeID, revisions: [Revision], sequence: PushSequence? = nil) {
        self.node = node
        self.revisions = revisions
        self.sequence = sequence
    }

    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "protocol": .int(SyncProtocol.version), "node": .string(node.rawValue), "revisions": .array(revisions.map(\.json)),
        ]
        if let sequence { object["sequence"] = sequence.json }
        return .object(object)
    }

    public init(json: JSONValue) throws(ProtocolError) {
        let o = try SyncProtocol.object(json, "push request")
        try SyncProtocol.checkVersion(o)
        guard let text = o["node"]?.stringValue, let node = NodeID(text) else {
            throw ProtocolError(.malformed, "node: expected a node id")
        }
        let sequence = try o["sequence"].map { value throws(ProtocolError) in try PushSequence(json: value) }
        self.init(
            node: node, revisions: try SyncProtocol.revisions(o["revisions"], limit: SyncProtocol.maximumBatchRevisions), sequence: sequence
        )
    }
}

/// A batch's place in a pipelined push (spec 8.3.1): a client that sends batch k+1 before batch k
/// is answered numbers them in one sequence, and the central node commits a device's batches of a
/// sequence in that order, verifying each while the one before it is committed.
public struct PushSequence: Sendable, Hashable {
    /// Chosen at random for each sync: 32 lowercase hexadecimal digits (16 to 64 are accepted).
    public var id: String
    /// 0 for the first batch of the sequence, then 1, 2, …
    public var batch: Int

    public init(id: String, batch: Int) {
        self.id = id
        self.batch = batch
    }

    /// A new sequence, at its first batch.
    public static func random() -> PushSequence {
        let hex = Array("0123456789abcdef".utf8)
        var generator = SystemRandomNumberGenerator()
        let digits = (0..<32).map { _ in hex[Int.random(in: 0..<16, using: &generator)] }
        return PushSequence(id: String(decoding: digits, as: UTF8.self), batch: 0)
    }

    /// The same sequence at its next batch.
    public var next: PushSequence { PushSequence(id: id, batch: batch + 1) }

    public var json: JSONValue { ["id": .string(id), "batch": .int(Int64(batch))] }

    public init(json: JSONValue) throws(ProtocolError) {
        guard case .object(let o) = json, let id = o["id"]?.stringValue, (16...64).contains(id.utf8.count),
            id.utf8.allSatisfy({
                (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0)
            }),
            case .int(let batch)? = o["batch"], (0...Int64(Int32.max)).contains(batch)
        else {
            throw ProtocolError(.malformed, "sequence: expected {\"id\": 16 to 64 lowercase hex digits, \"batch\": an integer ≥ 0}")
        }
        self.init(id: id, batch: Int(batch))
    }
}

/// `POST /v1/push` response.
public struct PushResponse: Sendable, Equatable {
    /// Revisions stored by this push.
    public var accepted: Int
    /// Revisions the server already held (re-delivery is harmless).
    public var duplicates: Int
    /// Relayed revisions the server did not merge because it holds another content for their dot,
    /// another history of their node, or they depend on such a one; it keeps them aside as
    /// evidence (spec 4.5). The pusher's own history of those nodes differs from the server's.
    public var setAside: [Dot]
    public var knowledge: VersionVector

    public init(accepted: Int, duplicates: Int, setAside: [Dot] = [], knowledge: VersionVector) {
        self.accepted = accepted
        self.duplicates = duplicates
        self.setAside = setAside
        self.knowledge = knowledge
    }

    public var json: JSONValue {
        [
            "protocol": .int(SyncProtocol.version), "accepted": .int(Int64(accepted)), "duplicates": .int(Int64(duplicates)),
            "set_aside": .array(setAside.map { .string($0.description) }), "knowledge": knowledge.json,
        ]
    }

    public init(json: JSONValue) throws(ProtocolError) {
        let o = try SyncProtocol.object(json, "push response")
        try SyncProtocol.checkVersion(o)
        guard case .int(let a)? = o["accepted"], case .int(let d)? = o["duplicates"] else {
            throw ProtocolError(.malformed, "accepted, duplicates: expected integers")
        }
        guard case .array(let items)? = o["set_aside"], items.count <= SyncProtocol.maximumBatchRevisions else {
            throw ProtocolError(.malformed, "set_aside: expected an array of dots")
        }
        var setAside: [Dot] = []
        for item in items {
            guard let text = item.stringValue, let dot = Dot(text) else {
                throw ProtocolError(.malformed, "set_aside: expected dots written NODE:COUNTER")
            }
            setAside.append(dot)
        }
        self.init(
            accepted: Int(a), duplicates: Int(d), setAside: setAside, knowledge: try SyncProtocol.knowledge(o["knowledge"], at: "knowledge")
        )
    }
}

/// `POST /v1/pull` request: what the client holds, and how many revisions it wants at most.
public struct PullRequest: Sendable, Equatable {
    public var knowledge: VersionVector
    public var limit: Int

    public init(knowledge: VersionVector, limit: Int = SyncProtocol.defaultBatchRevisions) {
        self.knowledge = knowledge
        self.limit = limit
    }

    public var json: JSONValue {
        ["protocol": .int(SyncProtocol.version), "knowledge": knowledge.json, "limit": .int(Int64(limit))]
    }

    public init(json: JSONValue) throws(ProtocolError) {
        let o = try SyncProtocol.object(json, "pull request")
        try SyncProtocol.checkVersion(o)
        var limit = SyncProtocol.defaultBatchRevisions
        if let l = o["limit"] {
            guard case .int(let n) = l, n >= 1, n <= Int64(SyncProtocol.maximumBatchRevisions) else {
                throw ProtocolError(.malformed, "limit: expected an integer from 1 to \(SyncProtocol.maximumBatchRevisions)")
            }
            limit = Int(n)
        }
        self.init(knowledge: try SyncProtocol.knowledge(o["knowledge"], at: "knowledge"), limit: limit)
    }
}

/// `POST /v1/pull` response: the next revisions the client lacks, in causal order.
public struct PullResponse: Sendable, Equatable {
    public var revisions: [Revision]
    /// True when the server holds further revisions the client lacks.
    public var more: Bool
    public var knowledge: VersionVector
    /// The central node's certificates of the page's authors (spec 8.4, 15.9).
    public var certificates: [NodeCertificate]

    public init(revisions: [Revision], more: Bool, knowledge: VersionVector, certificates: [NodeCertificate] = []) {
        self.revisions = revisions
        self.more = more
        self.knowledge = knowledge
        self.certificates = certificates
    }

    public var json: JSONValue {
        [
            "protocol": .int(SyncProtocol.version), "revisions": .array(revisions.map(\.json)), "more": .bool(more),
            "knowledge": knowledge.json,
            "certificates": .array(certificates.map(\.json)),
        ]
    }

    public init(json: JSONValue) throws(ProtocolError) {
        let o = try SyncProtocol.object(json, "pull response")
        try SyncProtocol.checkVersion(o)
        guard case .bool(let more)? = o["more"] else { throw ProtocolError(.malformed, "more: expected a boolean") }
        var certificates: [NodeCertificate] = []
        if let list = o["certificates"] {
            guard let items = list.arrayValue, items.count <= SyncProtocol.maximumBatchRevisions else {
                throw ProtocolError(.malformed, "certificates: expected an array")
            }
            for (i, item) in items.enumerated() { certificates.append(try NodeCertificate(json: item, at: "certificates[\(i)]")) }
        }
        self.init(
            revisions: try SyncProtocol.revisions(o["revisions"], limit: SyncProtocol.maximumBatchRevisions),
            more: more, knowledge: try SyncProtocol.knowledge(o["knowledge"], at: "knowledge"), certificates: certificates)
    }
}

/// Splices already-canonical revision texts into a push body without re-encoding them.
public enum PushBody {
    /// The canonical body of `POST /v1/push` with the stored texts spliced in (members in canonical
    /// order: `node`, `protocol`, `revisions`, `sequence`).
    public static func bytes(node: NodeID, revisionTexts: [String], sequence: PushSequence? = nil) -> [UInt8] {
        var bytes = Array("{\"node\":\"\(node.rawValue)\",\"protocol\":\(SyncProtocol.version),\"revisions\":[".utf8)
        for (i, text) in revisionTexts.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes += Array(text.utf8)
        }
        bytes += Array("]".utf8)
        if let sequence { bytes += Array(",\"sequence\":\(sequence.json.canonicalText)".utf8) }
        bytes += Array("}".utf8)
        return bytes
    }
}
