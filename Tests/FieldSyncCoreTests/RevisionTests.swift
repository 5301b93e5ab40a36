import FieldSyncSeededRandom
import PropertyBased
import Testing

@testable import FieldSyncCore

/// Revisions: their JSON form, what a signature covers, and the shape checks of `Revision.init(json:)`.
@Suite struct RevisionTests {
    static let full = Fixture.revision(
        Fixture.nodeB, 7,
        [
            .set(path: "title", value: "Shelling of the market"),
            .set(path: "casualties.killed", value: 3),
            .set(path: "custom.source", value: ["url": "https://example.org", "pages": [1, 2.5]]),
            .unset(path: "narrative"),
            .add(path: "tags", element: "urgent"),
            .remove(path: "violations", element: "looting"),
        ],
        context: Fixture.vector((Fixture.nodeA, 4), (Fixture.nodeB, 6)),
        author: "Rania", time: 1_741_340_000_123, note: "merged two reports", signature: "c2lnbmF0dXJl")

    /// A valid revision as JSON members, for the malformed-member cases to break one at a time.
    static var members: [String: JSONValue] { full.json.objectValue! }

    // MARK: Round trip

    @Test(arguments: [
        full,
        Fixture.revision(Fixture.nodeA, 1, [.set(path: "title", value: "x")]),
        Fixture.revision(Fixture.nodeA, 2, kind: .delete, context: Fixture.vector((Fixture.nodeA, 1))),
        Fixture.revision(Fixture.nodeC, 1, [], time: -5),
        Fixture.revision(Fixture.nodeC, 9_007_199_254_740_991, [], note: ""),
    ])
    func jsonRoundTrip(_ revision: Revision) throws {
        #expect(try Revision(json: revision.json) == revision)
        let text = revision.json.canonicalText
        #expect(try Revision(json: JSONValue(parsing: text)) == revision)
        #expect(try Revision(json: JSONValue(parsing: revision.json.prettyText())).json.canonicalBytes == Array(text.utf8))
    }

    @Test func jsonMembers() {
        let o = Self.full.json.objectValue!
        #expect(Set(o.keys) == ["v", "node", "counter", "record", "kind", "ops", "context", "author", "time", "note", "sig"])
        #expect(o["v"] == 2)
        #expect(o["node"] == "bbbbbbbbbbbbbbb2")
        #expect(o["counter"] == 7)
        #expect(o["record"] == "01890a5d-ac96-774b-bcce-b302099a8057")
        #expect(o["kind"] == "put")
        #expect(o["ops"]?.arrayValue?.first == ["op": "set", "path": "title", "value": "Shelling of the market"])
        #expect(o["ops"]?.arrayValue?[3] == ["op": "unset", "path": "narrative"])
        #expect(o["ops"]?.arrayValue?[4] == ["op": "add", "path": "tags", "value": "urgent"])
        #expect(o["ops"]?.arrayValue?[5] == ["op": "remove", "path": "violations", "value": "looting"])
        #expect(o["sig"] == "c2lnbmF0dXJl")
        let bare = Fixture.revision(Fixture.nodeA, 1).json.objectValue!
        #expect(bare["note"] == nil)
        #expect(bare["sig"] == nil)
    }

    @Test func writesIncludeTheDeletedRegister() {
        let writes = Self.full.writes
        #expect(writes.count == 7)
        #expect(writes[0].key == .deleted && writes[0].value == false)
        #expect(writes[1].key == RegisterKey(path: "title") && writes[1].value == "Shelling of the market")
        #expect(writes[4].key == RegisterKey(path: "narrative") && writes[4].value == nil)
        #expect(writes[5].key == RegisterKey(path: "tags", element: "urgent") && writes[5].value == true)
        #expect(writes[6].key == RegisterKey(path: "violations", element: "looting") && writes[6].value == false)
        let delete = Fixture.revision(Fixture.nodeA, 1, kind: .delete)
        #expect(delete.writes.count == 1)
        #expect(delete.writes[0].key == .deleted && delete.writes[0].value == true)
    }

    // MARK: Signed bytes

    @Test(arguments: [
        full,
        Fixture.revision(Fixture.nodeA, 1, [.set(path: "title", value: "x")]),
        Fixture.revision(Fixture.nodeA, 2, kind: .delete, context: Fixture.vector((Fixture.nodeA, 1)), signature: "YQ=="),
        Fixture.revision(Fixture.nodeC, 1, [.set(path: "narrative", value: "a \"quoted\" \\ line\n")], note: "sig", signature: "eg=="),
    ])
    func canonicalFormsAgreeWithTheirSeparateEncodings(_ revision: Revision) throws {
        let forms = revision.canonicalForms
        #expect(forms.signed == revision.signedBytes)
        #expect(forms.text == revision.json.canonicalText)
    }

    @Test func signedBytesExcludeSig() throws {
        var unsigned = Self.full
        unsigned.signature = nil
        var resigned = Self.full
        resigned.signature = "b3RoZXI="
        #expect(Self.full.signedBytes == unsigned.signedBytes)
        #expect(Self.full.signedBytes == resigned.signedBytes)
        #expect(Self.full.signedBytes == unsigned.json.canonicalBytes)
        #expect(Self.full.json.canonicalBytes != Self.full.signedBytes)

        let signed = try JSONValue(parsing: Self.full.signedBytes)
        #expect(signed["sig"] == nil)
        var expected = Self.members
        expected["sig"] = nil
        #expect(signed == .object(expected))
    }

    @Test func signedBytesCoverEveryOtherMember() {
        let base = Self.full.signedBytes
        var changed: [Revision] = []
        var r = Self.full
        r.note = "another reason"
        changed.append(r)
        r = Self.full
        r.note = nil
        changed.append(r)
        r = Self.full
        r.author = "Someone else"
        changed.append(r)
        r = Self.full
        r.time += 1
        changed.append(r)
        r = Self.full
        r.dot.counter += 1
        changed.append(r)
        r = Self.full
        r.dot.node = Fixture.nodeC
        changed.append(r)
        r = Self.full
        r.record = Fixture.otherRecord
        changed.append(r)
        r = Self.full
        r.context = Fixture.vector((Fixture.nodeA, 5))
        changed.append(r)
        r = Self.full
        r.operations.removeLast()
        changed.append(r)
        r = Self.full
        r.operations.swapAt(0, 1)
        changed.append(r)
        r = Self.full
        r.kind = .delete
        r.operations = []
        changed.append(r)
        for revision in changed {
            #expect(revision.signedBytes != base)
        }
        #expect(Set(changed.map(\.signedBytes)).count == changed.count)
    }

    // MARK: Malformed members

    struct Malformation: Sendable, CustomTestStringConvertible {
        var label: String
        var path: String
        var mutate: @Sendable (inout [String: JSONValue]) -> Void
        var testDescription: String { label }
    }

    static let malformations: [Malformation] = [
        Malformation(label: "unknown member", path: "revision.extra") { $0["extra"] = 1 },
        Malformation(label: "v missing", path: "revision.v") { $0["v"] = nil },
        Malformation(label: "v as string", path: "revision.v") { $0["v"] = "1" },
        Malformation(label: "v from the future", path: "revision.v") { $0["v"] = 3 },
        Malformation(label: "prev in format 1", path: "revision.prev") {
            $0["v"] = 1
            $0["prev"] = .string(String(repeating: "a", count: 64))
        },
        Malformation(label: "prev not a hash", path: "revision.prev") { $0["prev"] = "ABC" },
        Malformation(label: "prev uppercase", path: "revision.prev") { $0["prev"] = .string(String(repeating: "A", count: 64)) },
        Malformation(label: "node missing", path: "revision.node") { $0["node"] = nil },
        Malformation(label: "node uppercase", path: "revision.node") { $0["node"] = "BBBBBBBBBBBBBBB2" },
        Malformation(label: "node short", path: "revision.node") { $0["node"] = "bbbb" },
        Malformation(label: "node number", path: "revision.node") { $0["node"] = 12 },
        Malformation(label: "counter missing", path: "revision.counter") { $0["counter"] = nil },
        Malformation(label: "counter zero", path: "revision.counter") { $0["counter"] = 0 },
        Malformation(label: "counter negative", path: "revision.counter") { $0["counter"] = -3 },
        Malformation(label: "counter fractional", path: "revision.counter") { $0["counter"] = 7.5 },
        Malformation(label: "counter string", path: "revision.counter") { $0["counter"] = "7" },
        Malformation(label: "record missing", path: "revision.record") { $0["record"] = nil },
        Malformation(label: "record not a uuid", path: "revision.record") { $0["record"] = "incident-1" },
        Malformation(label: "record uppercase", path: "revision.record") {
            $0["record"] = "01890A5D-AC96-774B-BCCE-B302099A8057"
        },
        Malformation(label: "kind missing", path: "revision.kind") { $0["kind"] = nil },
        Malformation(label: "kind unknown", path: "revision.kind") { $0["kind"] = "patch" },
        Malformation(label: "ops missing", path: "revision.ops") { $0["ops"] = nil },
        Malformation(label: "ops object", path: "revision.ops") { $0["ops"] = [:] },
        Malformation(label: "too many ops", path: "revision.ops") {
            $0["ops"] = .array((0...Revision.maximumOperations).map { ["op": "set", "path": .string("custom.k\($0)"), "value": 1] })
        },
        Malformation(label: "op not an object", path: "revision.ops[1]") { $0["ops"] = [["op": "unset", "path": "a"], "unset"] },
        Malformation(label: "op name missing", path: "revision.ops[0].op") { $0["ops"] = [["path": "title", "value": "x"]] },
        Malformation(label: "op name unknown", path: "revision.ops[0].op") {
            $0["ops"] = [["op": "append", "path": "title", "value": "x"]]
        },
        Malformation(label: "op path missing", path: "revision.ops[0].path") { $0["ops"] = [["op": "set", "value": "x"]] },
        Malformation(label: "op path empty", path: "revision.ops[0].path") { $0["ops"] = [["op": "set", "path": "", "value": "x"]] },
        Malformation(label: "op path number", path: "revision.ops[0].path") { $0["ops"] = [["op": "unset", "path": 3]] },
        Malformation(label: "set without value", path: "revision.ops[2].value") {
            $0["ops"] = [["op": "unset", "path": "a"], ["op": "unset", "path": "b"], ["op": "set", "path": "title"]]
        },
        Malformation(label: "add with number", path: "revision.ops[0].value") { $0["ops"] = [["op": "add", "path": "tags", "value": 1]] },
        Malformation(label: "remove without value", path: "revision.ops[0].value") { $0["ops"] = [["op": "remove", "path": "tags"]] },
        Malformation(label: "unset with value", path: "revision.ops[0].value") {
            $0["ops"] = [["op": "unset", "path": "narrative", "value": "x"]]
        },
        Malformation(label: "op extra member", path: "revision.ops[0].when") {
            $0["ops"] = [["op": "set", "path": "title", "value": "x", "when": 1]]
        },
        Malformation(label: "same register twice", path: "revision.ops[1]") {
            $0["ops"] = [["op": "set", "path": "title", "value": "x"], ["op": "unset", "path": "title"]]
        },
        Malformation(label: "same element twice", path: "revision.ops[2]") {
            $0["ops"] = [
                ["op": "add", "path": "tags", "value": "a"], ["op": "add", "path": "tags", "value": "b"],
                ["op": "remove", "path": "tags", "value": "a"],
            ]
        },
        Malformation(label: "delete with ops", path: "revision.ops") { $0["kind"] = "delete" },
        Malformation(label: "context missing", path: "revision.context") { $0["context"] = nil },
        Malformation(label: "context array", path: "revision.context") { $0["context"] = [1] },
        Malformation(label: "context bad node", path: "revision.context.zz") { $0["context"] = ["zz": 1] },
        Malformation(label: "context negative", path: "revision.context.aaaaaaaaaaaaaaa1") {
            $0["context"] = ["aaaaaaaaaaaaaaa1": -1]
        },
        Malformation(label: "context covers itself", path: "revision.context") {
            $0["context"] = ["bbbbbbbbbbbbbbb2": 7]
        },
        Malformation(label: "context after itself", path: "revision.context") {
            $0["context"] = ["bbbbbbbbbbbbbbb2": 8, "aaaaaaaaaaaaaaa1": 1]
        },
        Malformation(label: "author missing", path: "revision.author") { $0["author"] = nil },
        Malformation(label: "author empty", path: "revision.author") { $0["author"] = "" },
        Malformation(label: "author too long", path: "revision.author") {
            $0["author"] = .string(String(repeating: "a", count: Revision.maximumAuthorLength + 1))
        },
        Malformation(label: "author number", path: "revision.author") { $0["author"] = 5 },
        Malformation(label: "time missing", path: "revision.time") { $0["time"] = nil },
        Malformation(label: "time fractional", path: "revision.time") { $0["time"] = 1.5 },
        Malformation(label: "time string", path: "revision.time") { $0["time"] = "2025-03-07" },
        Malformation(label: "note number", path: "revision.note") { $0["note"] = 1 },
        Malformation(label: "note null", path: "revision.note") { $0["note"] = .null },
        Malformation(label: "note too long", path: "revision.note") {
            $0["note"] = .string(String(repeating: "n", count: Revision.maximumNoteLength + 1))
        },
        Malformation(label: "sig number", path: "revision.sig") { $0["sig"] = 1 },
        Malformation(label: "sig null", path: "revision.sig") { $0["sig"] = .null },
    ]

    @Test(arguments: malformations)
    func rejectsMalformedMemberNamingThePath(_ malformation: Malformation) {
        var members = Self.members
        malformation.mutate(&members)
        let problem = #expect(throws: DecodingProblem.self) { try Revision(json: .object(members)) }
        #expect(problem?.path == malformation.path, "\(problem?.description ?? "no problem")")
        #expect(problem?.description.hasPrefix(malformation.path + ": ") == true)
        #expect(problem?.reason.isEmpty == false)

        // The caller's path prefixes every problem.
        let nested = #expect(throws: DecodingProblem.self) { try Revision(json: .object(members), at: "batch[3]") }
        #expect(nested?.path == "batch[3]" + malformation.path.dropFirst("revision".count))
    }

    @Test(arguments: [JSONValue.array([]), .null, .string("{}"), .int(1)])
    func rejectsNonObjects(_ json: JSONValue) {
        let problem = #expect(throws: DecodingProblem.self) { try Revision(json: json) }
        #expect(problem?.path == "revision")
    }

    @Test func acceptsTheLimits() throws {
        var members = Self.members
        members["author"] = .string(String(repeating: "é", count: Revision.maximumAuthorLength))
        members["note"] = .string(String(repeating: "n", count: Revision.maximumNoteLength))
        members["ops"] = .array((1...Revision.maximumOperations).map { ["op": "set", "path": .string("custom.k\($0)"), "value": 1] })
        members["context"] = ["bbbbbbbbbbbbbbb2": 6, "aaaaaaaaaaaaaaa1": 0]
        let revision = try Revision(json: .object(members))
        #expect(revision.operations.count == Revision.maximumOperations)
        #expect(revision.context == Fixture.vector((Fixture.nodeB, 6)))
    }

    @Test func everyMalformationBreaksAValidRevision() throws {
        // Guards the table: the unmodified members are accepted.
        #expect(try Revision(json: .object(Self.members)) == Self.full)
    }

    /// Random revisions survive JSON text exactly, and their signed bytes never mention `sig`.
    @Test func jsonRoundTripProperty() async {
        await propertyCheck(count: 150, input: Gen.uint64()) { seed in
            var rng = SplitMix64(seed: seed)
            let revision = Self.randomRevision(using: &rng)
            let parsed = try Revision(json: JSONValue(parsing: revision.json.canonicalText))
            #expect(parsed == revision)
            #expect(parsed.signedBytes == revision.signedBytes)
            let signed = try JSONValue(parsing: revision.signedBytes)
            #expect(signed["sig"] == nil)
            #expect(signed["node"]?.stringValue == revision.dot.node.rawValue)
        }
    }

    static func randomRevision<R: RandomNumberGenerator>(using rng: inout R) -> Revision {
        let node = NodeID.random(using: &rng)
        let counter = UInt64.random(in: 1...1000, using: &rng)
        var context = VersionVector()
        context[node] = UInt64.random(in: 0..<counter, using: &rng)
        context[NodeID.random(using: &rng)] = UInt64.random(in: 0...50, using: &rng)
        let kind: Revision.Kind = Int.random(in: 0..<5, using: &rng) == 0 ? .delete : .put
        var operations: [FieldOperation] = []
        if kind == .put {
            for i in 0..<Int.random(in: 0...5, using: &rng) {
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: operations.append(.set(path: "custom.k\(i)", value: RandomJSON.value(depth: 1, using: &rng)))
                case 1: operations.append(.unset(path: "custom.k\(i)"))
                case 2: operations.append(.add(path: "tags", element: "t\(i)" + RandomJSON.string(using: &rng)))
                default: operations.append(.remove(path: "tags", element: "r\(i)" + RandomJSON.string(using: &rng)))
                }
            }
        }
        let record = RecordID.generate(millisecondsSince1970: Int64.random(in: 0...2_000_000_000_000, using: &rng), using: &rng)
        let author = "a" + RandomJSON.string(using: &rng)
        return Revision(
            dot: Dot(node: node, counter: counter), record: record, kind: kind, operations: operations, context: context,
            author: author, time: Int64.random(in: -1000...2_000_000_000_000, using: &rng),
            note: Bool.random(using: &rng) ? RandomJSON.string(using: &rng) : nil,
            signature: Bool.random(using: &rng) ? "c2ln" : nil)
    }
}
