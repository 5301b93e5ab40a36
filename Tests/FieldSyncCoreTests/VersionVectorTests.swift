import FieldSyncSeededRandom
import PropertyBased
import Testing

@testable import FieldSyncCore

/// Version vectors: the partial order, coverage, merge and their JSON form.
@Suite struct VersionVectorTests {
    let a = Fixture.nodeA
    let b = Fixture.nodeB
    let c = Fixture.nodeC

    func vv(_ entries: (NodeID, UInt64)...) -> VersionVector {
        VersionVector(Dictionary(entries, uniquingKeysWith: { _, last in last }))
    }

    // MARK: Compare

    @Test func compareBeforeAfterEqualConcurrent() {
        #expect(vv((a, 1)).compare(vv((a, 2))) == .before)
        #expect(vv((a, 2)).compare(vv((a, 1))) == .after)
        #expect(vv((a, 2), (b, 1)).compare(vv((a, 2), (b, 1))) == .equal)
        #expect(vv((a, 1)).compare(vv((b, 1))) == .concurrent)
        #expect(vv((a, 2), (b, 1)).compare(vv((a, 1), (b, 2))) == .concurrent)
        #expect(vv((a, 1)).compare(vv((a, 1), (b, 1))) == .before)
        #expect(vv((a, 1), (c, 4)).compare(vv((a, 1))) == .after)
    }

    @Test func emptyVectorIsTheBottom() {
        #expect(VersionVector().compare(VersionVector()) == .equal)
        #expect(VersionVector().compare(vv((a, 1))) == .before)
        #expect(vv((a, 1)).compare(VersionVector()) == .after)
        #expect(VersionVector().isEmpty)
        #expect(!vv((a, 1)).isEmpty)
    }

    // MARK: Covers

    @Test func coversDots() {
        let v = vv((a, 3), (b, 1))
        #expect(v.covers(Dot(node: a, counter: 1)))
        #expect(v.covers(Dot(node: a, counter: 3)))
        #expect(!v.covers(Dot(node: a, counter: 4)))
        #expect(v.covers(Dot(node: b, counter: 1)))
        #expect(!v.covers(Dot(node: b, counter: 2)))
        #expect(!v.covers(Dot(node: c, counter: 1)))
        #expect(!VersionVector().covers(Dot(node: a, counter: 1)))
    }

    @Test func coversVectors() {
        let v = vv((a, 3), (b, 1))
        #expect(v.covers(VersionVector()))
        #expect(v.covers(v))
        #expect(v.covers(vv((a, 2))))
        #expect(v.covers(vv((a, 3), (b, 1))))
        #expect(!v.covers(vv((a, 4))))
        #expect(!v.covers(vv((c, 1))))
        #expect(!v.covers(vv((a, 1), (b, 2))))
        #expect(!VersionVector().covers(v))
    }

    // MARK: Merge, add, zero entries

    @Test func mergeIsThePointwiseMaximum() {
        var v = vv((a, 3), (b, 1))
        v.merge(vv((b, 4), (c, 2), (a, 1)))
        #expect(v == vv((a, 3), (b, 4), (c, 2)))
        #expect(vv((a, 1)).merging(vv((b, 2))) == vv((a, 1), (b, 2)))
        #expect(vv((a, 5)).merging(VersionVector()) == vv((a, 5)))
        let original = vv((a, 1))
        _ = original.merging(vv((a, 9)))
        #expect(original == vv((a, 1)), "merging does not mutate")
    }

    @Test func addOnlyRaises() {
        var v = vv((a, 3))
        v.add(Dot(node: a, counter: 2))
        #expect(v[a] == 3)
        v.add(Dot(node: a, counter: 5))
        #expect(v[a] == 5)
        v.add(Dot(node: b, counter: 1))
        #expect(v == vv((a, 5), (b, 1)))
    }

    @Test func zeroEntriesAreNotStored() {
        let v = VersionVector([a: 0, b: 2])
        #expect(v.counters == [b: 2])
        #expect(v == vv((b, 2)))
        #expect(v.hashValue == vv((b, 2)).hashValue)
        #expect(VersionVector([a: 0]) == VersionVector())
        #expect(VersionVector([a: 0]).isEmpty)

        var w = vv((a, 1), (b, 2))
        w[a] = 0
        #expect(w.counters[a] == nil)
        #expect(w == vv((b, 2)))
        #expect(w[a] == 0, "a missing entry reads as zero")
        w[c] = 0
        #expect(w.counters.count == 1)
        #expect(w.json == ["bbbbbbbbbbbbbbb2": 2])
    }

    @Test func nodesTotalAndDescription() {
        let v = vv((c, 1), (a, 3), (b, 2))
        #expect(v.nodes == [a, b, c])
        #expect(v.total == 6)
        #expect(v.description == "{aaaaaaaaaaaaaaa1:3, bbbbbbbbbbbbbbb2:2, ccccccccccccccc3:1}")
        #expect(VersionVector().description == "{}")
    }

    // MARK: JSON

    @Test func jsonRoundTrip() throws {
        let v = vv((a, 3), (b, 1), (c, 9_007_199_254_740_000))
        #expect(v.json.canonicalText == #"{"aaaaaaaaaaaaaaa1":3,"bbbbbbbbbbbbbbb2":1,"ccccccccccccccc3":9007199254740000}"#)
        #expect(try VersionVector(json: v.json, at: "context") == v)
        #expect(try VersionVector(json: JSONValue(parsing: v.json.canonicalText), at: "context") == v)
        #expect(try VersionVector(json: .object([:]), at: "context") == VersionVector())
        #expect(VersionVector().json == .object([:]))
    }

    @Test func jsonZeroCountersAreDropped() throws {
        let v = try VersionVector(json: ["aaaaaaaaaaaaaaa1": 0, "bbbbbbbbbbbbbbb2": 4], at: "context")
        #expect(v == vv((b, 4)))
        #expect(v.counters.count == 1)
    }

    static let badJSON: [(JSONValue, String)] = [
        (JSONValue.array([]), "context"),
        (.string("{}"), "context"),
        (.null, "context"),
        (["AAAAAAAAAAAAAAA1": 1], "context.AAAAAAAAAAAAAAA1"),
        (["aaaa": 1], "context.aaaa"),
        (["aaaaaaaaaaaaaaag": 1], "context.aaaaaaaaaaaaaaag"),
        (["aaaaaaaaaaaaaaa1": -1], "context.aaaaaaaaaaaaaaa1"),
        (["aaaaaaaaaaaaaaa1": 1.5], "context.aaaaaaaaaaaaaaa1"),
        (["aaaaaaaaaaaaaaa1": "1"], "context.aaaaaaaaaaaaaaa1"),
        (["aaaaaaaaaaaaaaa1": .null], "context.aaaaaaaaaaaaaaa1"),
        (["aaaaaaaaaaaaaaa1": 1e20], "context.aaaaaaaaaaaaaaa1"),
    ]

    @Test(arguments: badJSON)
    func rejectsBadJSON(_ json: JSONValue, _ path: String) {
        let problem = #expect(throws: DecodingProblem.self) { try VersionVector(json: json, at: "context") }
        #expect(problem?.path == path)
        #expect(problem?.description.hasPrefix(path + ": ") == true)
    }

    // MARK: Delivery

    @Test func deliveryOfARevision() {
        let knowledge = vv((a, 2), (b, 1))
        func rev(_ node: NodeID, _ counter: UInt64, _ context: VersionVector = VersionVector()) -> Revision {
            Fixture.revision(node, counter, context: context)
        }
        #expect(knowledge.delivery(of: rev(a, 1)) == .duplicate)
        #expect(knowledge.delivery(of: rev(a, 2)) == .duplicate)
        #expect(knowledge.delivery(of: rev(a, 3, vv((b, 1)))) == .ready)
        #expect(knowledge.delivery(of: rev(c, 1, vv((a, 2)))) == .ready)
        guard case .gap(let skipped) = knowledge.delivery(of: rev(a, 4)) else {
            Issue.record("a:4 skips a:3")
            return
        }
        #expect(skipped.dot == Dot(node: a, counter: 4))
        #expect(skipped.missing == "\(a):3…3")
        guard case .gap(let unseen) = knowledge.delivery(of: rev(c, 1, vv((b, 2)))) else {
            Issue.record("c:1 depends on b:2")
            return
        }
        #expect(unseen.missing == "\(b):2")
        #expect(unseen.description.contains("\(c):1"))
    }

    // MARK: Properties

    static func randomVector<R: RandomNumberGenerator>(using rng: inout R) -> VersionVector {
        let nodes = [Fixture.nodeA, Fixture.nodeB, Fixture.nodeC]
        var counters: [NodeID: UInt64] = [:]
        for node in nodes where Bool.random(using: &rng) { counters[node] = UInt64.random(in: 0...4, using: &rng) }
        return VersionVector(counters)
    }

    /// Merge is a join: commutative, associative, idempotent, and its result covers both inputs and is the least such.
    @Test func mergeIsAJoinProperty() async {
        await propertyCheck(count: 200, input: Gen.uint64()) { seed in
            var rng = SplitMix64(seed: seed)
            let x = Self.randomVector(using: &rng)
            let y = Self.randomVector(using: &rng)
            let z = Self.randomVector(using: &rng)
            #expect(x.merging(y) == y.merging(x))
            #expect(x.merging(y).merging(z) == x.merging(y.merging(z)))
            #expect(x.merging(x) == x)
            let join = x.merging(y)
            #expect(join.covers(x) && join.covers(y))
            if z.covers(x) && z.covers(y) { #expect(z.covers(join)) }
            #expect(!join.counters.values.contains(0))
        }
    }

    /// Compare agrees with covers and is antisymmetric.
    @Test func compareAgreesWithCoversProperty() async {
        await propertyCheck(count: 200, input: Gen.uint64()) { seed in
            var rng = SplitMix64(seed: seed)
            let x = Self.randomVector(using: &rng)
            let y = Self.randomVector(using: &rng)
            let mirrored: [CausalOrder: CausalOrder] = [.before: .after, .after: .before, .equal: .equal, .concurrent: .concurrent]
            #expect(y.compare(x) == mirrored[x.compare(y)])
            switch x.compare(y) {
            case .equal: #expect(x == y)
            case .before: #expect(y.covers(x) && !x.covers(y))
            case .after: #expect(x.covers(y) && !y.covers(x))
            case .concurrent: #expect(!x.covers(y) && !y.covers(x))
            }
            #expect((x == y) == (x.compare(y) == .equal))
            let decoded = try VersionVector(json: JSONValue(parsing: x.json.canonicalText), at: "v")
            #expect(decoded == x)
        }
    }
}
