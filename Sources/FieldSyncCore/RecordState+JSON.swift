extension RecordState {
    /// The canonical persisted form: registers sorted by key, candidates in display order.
    /// Two replicas holding the same revisions produce byte-identical text.
    public var json: JSONValue {
        let keys = registers.keys.sorted()
        return [
            "id": .string(id.rawValue),
            "version": version.json,
            "registers": .array(
                keys.map { key in
                    var o: [String: JSONValue] = [
                        "path": .string(key.path),
                        "candidates": .array(registers[key]!.map(\.json)),
                    ]
                    if let e = key.element { o["element"] = .string(e) }
                    if let log = logs[key] { o["log"] = log.json }
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
            if let log = reg["log"] { logs[key] = try WriteLog(json: log, at: "registers[\(i)].log") }
        }
    }
}

extension WriteLog {
    /// `{runs: [{node, first, last, value?}], disputes: [["NODE:COUNTER", "NODE:COUNTER"]]}`,
    /// runs sorted by node and counter.
    public var json: JSONValue {
        let runs = self.runs.keys.sorted().flatMap { node in
            self.runs[node]!.map { run -> JSONValue in
                var o: [String: JSONValue] = [
                    "node": .string(node.rawValue), "first": .int(Int64(run.first)), "last": .int(Int64(run.last)),
                ]
                if let value = run.value { o["value"] = value }
                return .object(o)
            }
        }
        return [
            "runs": .array(runs),
            "disputes": .array(disputes.map { .array([.string($0.low.description), .string($0.high.description)]) }),
        ]
    }

    public init(json: JSONValue, at path: String) throws(DecodingProblem) {
        self.init()
        guard let runs = json["runs"]?.arrayValue, let disputes = json["disputes"]?.arrayValue else {
            throw DecodingProblem(path, "expected runs and disputes")
        }
        for (i, run) in runs.enumerated() {
            guard let node = run["node"]?.stringValue.flatMap(NodeID.init), case .int(let first)? = run["first"],
                case .int(let last)? = run["last"], first >= 1, last >= first
            else { throw DecodingProblem("\(path).runs[\(i)]", "malformed run") }
            self.runs[node, default: []].append(WriteRun(first: UInt64(first), last: UInt64(last), value: run["value"]))
        }
        for (i, pair) in disputes.enumerated() {
            guard let dots = pair.arrayValue, dots.count == 2, let a = dots[0].stringValue.flatMap(Dot.init),
                let b = dots[1].stringValue.flatMap(Dot.init)
            else { throw DecodingProblem("\(path).disputes[\(i)]", "expected two dots") }
            self.disputes.append(Dispute(a, b))
        }
        self.disputes.sort()
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
