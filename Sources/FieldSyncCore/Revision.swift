/// One immutable change to one record: the unit that is stored, synced, signed and kept forever.
///
/// Its causal `context` is the record's version vector as its author saw it; every earlier write
/// that the context covers is superseded by this revision's writes to the same registers.
public struct Revision: Hashable, Sendable {
    /// A put sets or clears fields; a delete marks the record deleted. Both write the `deleted` register.
    public enum Kind: String, Sendable, Hashable {
        case put, delete
    }

    /// The revision format version this build writes in the `v` member: 2 adds `prev`, the hash
    /// chain of a node's revisions (`Protocol/sync-protocol.md`, 4.5). Format 1 is still read.
    public static let formatVersion: Int64 = 2
    /// The formats this build reads.
    public static let readableFormats: ClosedRange<Int64> = 1...2
    /// Limits that keep one revision small; see `Protocol/sync-protocol.md`, "Limits".
    public static let maximumOperations = 1000
    public static let maximumAuthorLength = 200
    public static let maximumNoteLength = 10_000

    public var dot: Dot
    public var record: RecordID
    public var kind: Kind
    public var operations: [FieldOperation]
    public var context: VersionVector
    public var author: String
    /// Wall-clock milliseconds since 1970. Never used for causality; it only picks which candidate
    /// of a conflict is displayed (see ``Candidate/displayOrder(_:_:)``).
    public var time: Int64
    /// Why the change was made; required on resolutions.
    public var note: String?
    /// Base64 Ed25519 signature over ``signedBytes`` by the key of `dot.node`; nil when unsigned.
    public var signature: String?
    /// Format 2: the lowercase hex SHA-256 of the canonical text (with `sig`) of the same node's
    /// revision at `counter - 1`; nil at counter 1 and in format 1. It chains a node's revisions,
    /// so one hash names a whole history and a restored or cloned replica's fork is seen.
    public var previous: String?
    /// The `v` member: ``formatVersion`` for revisions made by this build, 1 for older ones.
    public var format: Int64

    public init(
        dot: Dot, record: RecordID, kind: Kind = .put, operations: [FieldOperation], context: VersionVector,
        author: String, time: Int64, note: String? = nil, signature: String? = nil, previous: String? = nil,
        format: Int64 = Revision.formatVersion
    ) {
        self.dot = dot
        self.record = record
        self.kind = kind
        self.operations = operations
        self.context = context
        self.author = author
        self.time = time
        self.note = note
        self.signature = signature
        self.previous = previous
        self.format = format
    }

    /// Every register this revision writes, with the value written (nil clears the field): the
    /// implicit `deleted`, each operation's, and for each collection entry whose field it sets, the
    /// entry's own register `collection.entry` = `true` (spec 6.6). An explicit write of an entry
    /// register (its removal, or a resolution keeping it) takes the place of the implicit one.
    public var writes: [(key: RegisterKey, value: JSONValue?)] {
        var result: [(key: RegisterKey, value: JSONValue?)] = [(RegisterKey.deleted, .bool(kind == .delete))]
        var explicit = Set<String>()
        for op in operations {
            result.append((op.key, op.registerValue))
            if IncidentSchema.isEntryPath(op.path) { explicit.insert(op.path) }
        }
        var implied = Set<String>()
        for case .set(let path, _) in operations {
            guard let entry = IncidentSchema.entryPath(of: path), !explicit.contains(entry), implied.insert(entry).inserted else {
                continue
            }
            result.append((RegisterKey(path: entry), .bool(true)))
        }
        return result
    }

    /// The revision as a JSON object, with its signature when it has one.
    public var json: JSONValue {
        var o = unsignedObject
        if let signature { o["sig"] = .string(signature) }
        return .object(o)
    }

    /// The canonical bytes that a signature covers: the canonical JSON of every member but `sig`.
    public var signedBytes: [UInt8] { JSONValue.object(unsignedObject).canonicalBytes }

    /// The signed bytes and the canonical text with `sig` (what is stored and sent), from one
    /// encoding: the signature member is spliced in where canonical key order puts it.
    public var canonicalForms: (signed: [UInt8], text: String) {
        let object = unsignedObject
        var out: [UInt8] = [0x7B]
        out.reserveCapacity(1536)
        var sigOffset: Int?
        for (i, key) in JSONValue.sortedKeys(object).enumerated() {
            if sigOffset == nil, JSONValue.utf8Less("sig", key) { sigOffset = out.count }
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONValue.writeString(key, into: &out)
            out.append(UInt8(ascii: ":"))
            object[key]!.writeCanonical(into: &out)
        }
        let offset = sigOffset ?? out.count
        out.append(0x7D)
        guard let signature else { return (out, String(decoding: out, as: UTF8.self)) }
        var member: [UInt8] = []
        if offset > 1 { member.append(UInt8(ascii: ",")) }
        JSONValue.writeString("sig", into: &member)
        member.append(UInt8(ascii: ":"))
        JSONValue.writeString(signature, into: &member)
        if offset == 1, out.count > 2 { member.append(UInt8(ascii: ",")) }
        var text = out
        text.insert(contentsOf: member, at: offset)
        return (out, String(decoding: text, as: UTF8.self))
    }

    private var unsignedObject: [String: JSONValue] {
        var o: [String: JSONValue] = [
            "v": .int(format),
            "node": .string(dot.node.rawValue),
            "counter": .int(Int64(dot.counter)),
            "record": .string(record.rawValue),
            "kind": .string(kind.rawValue),
            "ops": .array(operations.map(\.json)),
            "context": context.json,
            "author": .string(author),
            "time": .int(time),
        ]
        if let note { o["note"] = .string(note) }
        if let previous { o["prev"] = .string(previous) }
        return o
    }

    /// Reads a revision and checks its shape (not its field values; see ``IncidentSchema``).
    public init(json: JSONValue, at path: String = "revision") throws(DecodingProblem) {
        guard case .object(let o) = json else { throw DecodingProblem(path, "expected an object") }
        let known: Set<String> = ["v", "node", "counter", "record", "kind", "ops", "context", "author", "time", "note", "sig", "prev"]
        if let extra = o.keys.sorted().first(where: { !known.contains($0) }) {
            throw DecodingProblem("\(path).\(extra)", "unexpected member")
        }
        guard case .int(let v)? = o["v"] else { throw DecodingProblem("\(path).v", "expected an integer") }
        guard Revision.readableFormats.contains(v) else {
            throw DecodingProblem("\(path).v", "unsupported revision format \(v); this build reads formats 1 and 2")
        }
        guard let nodeText = o["node"]?.stringValue, let node = NodeID(nodeText) else {
            throw DecodingProblem("\(path).node", "expected a node id (16 lowercase hex digits)")
        }
        guard case .int(let counter)? = o["counter"], counter >= 1 else {
            throw DecodingProblem("\(path).counter", "expected an integer >= 1")
        }
        guard let recordText = o["record"]?.stringValue, let record = RecordID(recordText), recordText == record.rawValue else {
            throw DecodingProblem("\(path).record", "expected a lowercase UUID")
        }
        guard let kindText = o["kind"]?.stringValue, let kind = Kind(rawValue: kindText) else {
            throw DecodingProblem("\(path).kind", "expected \"put\" or \"delete\"")
        }
        guard case .array(let opsJSON)? = o["ops"] else { throw DecodingProblem("\(path).ops", "expected an array") }
        guard opsJSON.count <= Revision.maximumOperations else {
            throw DecodingProblem("\(path).ops", "more than \(Revision.maximumOperations) operations")
        }
        var operations: [FieldOperation] = []
        var keys = Set<RegisterKey>()
        for (i, opJSON) in opsJSON.enumerated() {
            let op = try FieldOperation(json: opJSON, at: "\(path).ops[\(i)]")
            guard keys.insert(op.key).inserted else { throw DecodingProblem("\(path).ops[\(i)]", "writes \(op.key) twice") }
            operations.append(op)
        }
        if kind == .delete, !operations.isEmpty { throw DecodingProblem("\(path).ops", "a delete carries no operations") }
        guard let contextJSON = o["context"] else { throw DecodingProblem("\(path).context", "missing") }
        let context = try VersionVector(json: contextJSON, at: "\(path).context")
        guard context[node] < UInt64(counter) else {
            throw DecodingProblem("\(path).context", "covers the revision itself (\(node):\(counter))")
        }
        guard let author = o["author"]?.stringValue, !author.isEmpty, author.unicodeScalars.count <= Revision.maximumAuthorLength else {
            throw DecodingProblem(
                "\(path).author", "expected a non-empty string of at most \(Revision.maximumAuthorLength) Unicode scalars")
        }
        guard case .int(let time)? = o["time"] else { throw DecodingProblem("\(path).time", "expected integer milliseconds") }
        var note: String?
        if let noteJSON = o["note"] {
            guard let text = noteJSON.stringValue, text.unicodeScalars.count <= Revision.maximumNoteLength else {
                throw DecodingProblem("\(path).note", "expected a string of at most \(Revision.maximumNoteLength) Unicode scalars")
            }
            note = text
        }
        var signature: String?
        if let sigJSON = o["sig"] {
            guard let text = sigJSON.stringValue else { throw DecodingProblem("\(path).sig", "expected a base64 string") }
            signature = text
        }
        var previous: String?
        if let prevJSON = o["prev"] {
            guard v >= 2 else { throw DecodingProblem("\(path).prev", "unexpected member in format 1") }
            guard counter > 1 else { throw DecodingProblem("\(path).prev", "a node's first revision has no previous one") }
            guard let text = prevJSON.stringValue, Revision.isHash(text) else {
                throw DecodingProblem("\(path).prev", "expected 64 lowercase hex digits (SHA-256)")
            }
            previous = text
        }
        self.init(
            dot: Dot(node: node, counter: UInt64(counter)), record: record, kind: kind, operations: operations,
            context: context, author: author, time: time, note: note, signature: signature, previous: previous, format: v)
    }
}

extension Revision {
    /// True for 64 lowercase hex digits, the written form of a SHA-256.
    public static func isHash(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}
