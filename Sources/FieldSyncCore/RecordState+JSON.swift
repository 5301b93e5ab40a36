extension RecordState {
    /// The canonical persisted form: registers sorted by key, candidates in display order.
    /// Two replicas holding the same revisions produce byte-identical text.
    public var json: JSONValue {
        let keys = registers.keys.sorted()
        return [
            "id": .string(id.rawValue),
            "version": version.json,
            "registers": .array(keys.map { key in
                var o: [String: JSONValue] = [
                    "path": .string(key.path),
                    "candidates": .array(registers[key]!.map(\.json)),
                ]
                if let e = key.element { o["element"] = .string(e) }
                return .object(o)
            }),
        ]
    }

    public init(json: JSONValue) throws(DecodingProblem) {
        guard let idText = json["id"]?.stringValue, let id = RecordID(idText) else { throw DecodingProblem("id", "expected a UUID") }
        self.init(id: id)
        version = try VersionVector(json: json["version"] ?? .object([:]), at: "version")
        guard let regs = json["registers"]?.arrayValue else { throw DecodingProblem("registers", "expected an array") }
        for (i, reg) in regs.enumerated() {
            guard let path = reg["path"]?.stringValue, let cands = reg["candidates"]?.arrayValue else {
                throw DecodingProblem("registers[\(i)]", "expected path and candidates")
            }
            let key = RegisterKey(path: path, element: reg["element"]?.stringValue)
            var list: [Candidate] = []
            for (j, c) in cands.enumerated() { list.append(try Candidate(json: c, at: "registers[\(i)].candidates[\(j)]")) }
            registers[key] = list
        }
    }
}

extension Candidate {
    /// `{node, counter, value?, author, time}`; `value` is absent when the write cleared the field.
    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "node": .string(dot.node.rawValue), "counter": .int(Int64(dot.counter)),
            "author": .string(author), "time": .int(time),
        ]
        if let value { o["value"] = value }
        return .object(o)
    }

    public init(json: JSONValue, at path: String) throws(DecodingProblem) {
        guard let nodeText = json["node"]?.stringValue, let node = NodeID(nodeText),
            case .int(let counter)? = json["counter"], let author = json["author"]?.stringValue,
            case .int(let time)? = json["time"]
        else { throw DecodingProblem(path, "malformed candidate") }
        self.init(dot: Dot(node: node, counter: UInt64(counter)), value: json["value"], author: author, time: time)
    }
}
