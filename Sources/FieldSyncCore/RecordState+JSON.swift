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
            if let log = reg["log"] { logs[key] = try WriteLog(json: log, at: "registers[\(i)].log", candidates: list) }
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

    /// Reads the log of a register whose candidates are `candidates`, in either stored form: a run
    /// marked `"candidate": true` (``RecordState/storedText``) takes the value of the candidate
    /// written by its last write, which must then be one of `candidates` and hold a value.
    public init(json: JSONValue, at path: String, candidates: [Candidate] = []) throws(DecodingProblem) {
        self.init()
        guard let runs = json["runs"]?.arrayValue, let disputes = json["disputes"]?.arrayValue else {
            throw DecodingProblem(path, "expected runs and disputes")
        }
        for (i, run) in runs.enumerated() {
            guard let node = run["node"]?.stringValue.flatMap(NodeID.init), case .int(let first)? = run["first"],
                case .int(let last)? = run["last"], first >= 1, last >= first
            else { throw DecodingProblem("\(path).runs[\(i)]", "malformed run") }
            var value = run["value"]
            switch run["candidate"] {
            case nil: break
            case .bool(true)? where value == nil:
                let dot = Dot(node: node, counter: UInt64(last))
                guard let written = candidates.first(where: { $0.dot == dot })?.value else {
                    throw DecodingProblem("\(path).runs[\(i)]", "names a candidate the register does not hold")
                }
                value = written
            default: throw DecodingProblem("\(path).runs[\(i)]", "malformed run")
            }
            self.runs[node, default: []].append(WriteRun(first: UInt64(first), last: UInt64(last), value: value))
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

extension RecordState {
    /// `json.canonicalText`, written directly: the same bytes without building the intermediate
    /// dictionaries and sorting their keys (encoding states was a tenth of a pull's CPU time).
    /// Members are written in canonical (UTF-8) order by hand; a test compares it with the encoder.
    public var canonicalText: String { text(naming: false) }

    /// The text stored in `record.state`: ``canonicalText``, except that a run of a write log whose
    /// last write is one of the register's candidates, with a text of 16 bytes or more, says so
    /// (`"candidate": true`) instead of holding that candidate's value again. A narrative written
    /// once is then stored once, not twice: a typical incident's state is about a quarter smaller.
    /// Canonical JSON, as deterministic as ``canonicalText``; ``init(json:)`` reads both.
    public var storedText: String { text(naming: true) }

    /// Whether `text`, read from a store, is this state as a store writes it: ``storedText``, or
    /// ``canonicalText`` as stores wrote it before the stored form named candidates.
    public func isStored(as text: String) -> Bool { text == storedText || text == canonicalText }

    private func text(naming: Bool) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(2048)
        out.append(contentsOf: #"{"id":"#.utf8)
        JSONValue.writeString(id.rawValue, into: &out)
        out.append(contentsOf: #","registers":["#.utf8)
        for (i, key) in registers.keys.sorted().enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: #"{"candidates":["#.utf8)
            for (j, candidate) in registers[key]!.enumerated() {
                if j > 0 { out.append(UInt8(ascii: ",")) }
                candidate.writeCanonical(into: &out)
            }
            out.append(UInt8(ascii: "]"))
            if let element = key.element {
                out.append(contentsOf: #","element":"#.utf8)
                JSONValue.writeString(element, into: &out)
            }
            if let log = logs[key] {
                out.append(contentsOf: #","log":"#.utf8)
                log.writeCanonical(into: &out, naming: naming ? registers[key]! : [])
            }
            out.append(contentsOf: #","path":"#.utf8)
            JSONValue.writeString(key.path, into: &out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(contentsOf: #"],"version":"#.utf8)
        version.writeCanonical(into: &out)
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }
}

extension VersionVector {
    /// `json`, canonically encoded into `out`.
    func writeCanonical(into out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        for (i, node) in counters.keys.sorted(by: { JSONValue.utf8Less($0.rawValue, $1.rawValue) }).enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONValue.writeString(node.rawValue, into: &out)
            out.append(UInt8(ascii: ":"))
            out.append(contentsOf: String(Int64(counters[node]!)).utf8)
        }
        out.append(UInt8(ascii: "}"))
    }
}

extension Candidate {
    /// `json`, canonically encoded into `out`: author, counter, node, time, value.
    func writeCanonical(into out: inout [UInt8]) {
        out.append(contentsOf: #"{"author":"#.utf8)
        JSONValue.writeString(author, into: &out)
        out.append(contentsOf: #","counter":"#.utf8)
        out.append(contentsOf: String(Int64(dot.counter)).utf8)
        out.append(contentsOf: #","node":"#.utf8)
        JSONValue.writeString(dot.node.rawValue, into: &out)
        out.append(contentsOf: #","time":"#.utf8)
        out.append(contentsOf: String(time).utf8)
        if let value {
            out.append(contentsOf: #","value":"#.utf8)
            value.writeCanonical(into: &out)
        }
        out.append(UInt8(ascii: "}"))
    }
}

extension WriteLog {
    /// The shortest text a stored run names by its candidate rather than repeating: below it the
    /// marker would not be shorter than the value.
    static let shortestNamedText = 16

    /// `json`, canonically encoded into `out`: disputes, then runs (first, last, node, value). A
    /// run whose last write is one of `candidates` with the same text, of at least
    /// ``shortestNamedText`` UTF-8 bytes, is written `{"candidate":true,"first","last","node"}`
    /// instead (``RecordState/storedText``).
    func writeCanonical(into out: inout [UInt8], naming candidates: [Candidate] = []) {
        out.append(contentsOf: #"{"disputes":["#.utf8)
        for (i, dispute) in disputes.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "["))
            JSONValue.writeString(dispute.low.description, into: &out)
            out.append(UInt8(ascii: ","))
            JSONValue.writeString(dispute.high.description, into: &out)
            out.append(UInt8(ascii: "]"))
        }
        out.append(contentsOf: #"],"runs":["#.utf8)
        var first = true
        for node in runs.keys.sorted() {
            for run in runs[node]! {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                if case .string(let text)? = run.value, text.utf8.count >= WriteLog.shortestNamedText,
                    candidates.contains(where: { $0.dot.counter == run.last && $0.dot.node == node && $0.value == run.value })
                {
                    out.append(contentsOf: #"{"candidate":true,"first":"#.utf8)
                    out.append(contentsOf: String(Int64(run.first)).utf8)
                    out.append(contentsOf: #","last":"#.utf8)
                    out.append(contentsOf: String(Int64(run.last)).utf8)
                    out.append(contentsOf: #","node":"#.utf8)
                    JSONValue.writeString(node.rawValue, into: &out)
                    out.append(UInt8(ascii: "}"))
                    continue
                }
                out.append(contentsOf: #"{"first":"#.utf8)
                out.append(contentsOf: String(Int64(run.first)).utf8)
                out.append(contentsOf: #","last":"#.utf8)
                out.append(contentsOf: String(Int64(run.last)).utf8)
                out.append(contentsOf: #","node":"#.utf8)
                JSONValue.writeString(node.rawValue, into: &out)
                if let value = run.value {
                    out.append(contentsOf: #","value":"#.utf8)
                    value.writeCanonical(into: &out)
                }
                out.append(UInt8(ascii: "}"))
            }
        }
        out.append(contentsOf: "]}".utf8)
    }
}
