import FieldSyncSeededRandom
import PropertyBased
import Testing

@testable import FieldSyncCore

/// `HistoryStep.canonicalOrder` (O(n log n)) against the rescanning definition it replaced, and
/// `CausalSort`, on random one-record histories of a few replicas that sync now and then.
@Suite struct CanonicalOrderTests {
    /// The definition: among the pending revisions, the earliest by (time, dot) whose context covers
    /// no other pending one. O(n²) per step; kept here as the reference.
    static func reference(_ revisions: [Revision]) -> [Revision] {
        var pending = revisions.sorted { a, b in a.time != b.time ? a.time < b.time : a.dot < b.dot }
        var ordered: [Revision] = []
        while !pending.isEmpty {
            let index = pending.firstIndex { r in !pending.contains { other in other.dot != r.dot && r.context.covers(other.dot) } } ?? 0
            ordered.append(pending.remove(at: index))
        }
        return ordered
    }

    /// A record edited by `nodes` replicas; each step one of them writes (with the record version it
    /// has seen as context) or learns everything another one has seen. Clocks may run backwards.
    static func history(nodes: Int, steps: Int, using rng: inout SplitMix64) -> [Revision] {
        let record = RecordID("01959a3c-7e00-7a00-8000-000000000001")!
        let ids = (0..<nodes).map { NodeID(String(format: "%016x", 0xa000 + $0))! }
        var seen = [VersionVector](repeating: VersionVector(), count: nodes)
        var counters = [UInt64](repeating: 0, count: nodes)
        var all: [Revision] = []
        for _ in 0..<steps {
            let n = Int(rng.next() % UInt64(nodes))
            if rng.next() % 3 == 0 {
                seen[n].merge(seen[Int(rng.next() % UInt64(nodes))])
                continue
            }
            counters[n] += 1
            let dot = Dot(node: ids[n], counter: counters[n])
            let time = Int64(1_741_340_000_000 + Int64(rng.next() % 50))
            all.append(
                Revision(
                    dot: dot, record: record, operations: [.set(path: "title", value: .string("t\(all.count)"))], context: seen[n],
                    author: "A", time: time))
            seen[n].add(dot)
        }
        return all
    }

    @Test func theFastOrderIsTheDefinitionsOrder() async {
        await propertyCheck(count: 200, input: Gen.int(in: 1...5), Gen.int(in: 0...120), Gen.uint64()) { nodes, steps, seed in
            var rng = SplitMix64(seed: seed)
            let revisions = Self.history(nodes: nodes, steps: steps, using: &rng).shuffled(using: &rng)
            let fast = HistoryStep.canonicalOrder(revisions)
            #expect(fast.map(\.dot) == Self.reference(revisions).map(\.dot))
            // Causal: every revision after everything its context covers.
            var placed = VersionVector()
            for revision in fast {
                #expect(revision.context.nodes.allSatisfy { placed[$0] >= revision.context[$0] })
                placed.add(revision.dot)
            }
        }
    }

    @Test func causalSortKeepsTheGivenOrderWhereItCanAndFixesItWhereItMust() async {
        await propertyCheck(count: 200, input: Gen.int(in: 1...5), Gen.int(in: 0...120), Gen.uint64()) { nodes, steps, seed in
            var rng = SplitMix64(seed: seed)
            let history = Self.history(nodes: nodes, steps: steps, using: &rng)
            #expect(CausalSort.sorted(history).map(\.dot) == history.map(\.dot), "a causal order stays as it is")
            let shuffled = history.shuffled(using: &rng)
            let sorted = CausalSort.sorted(shuffled)
            #expect(Set(sorted.map(\.dot)) == Set(history.map(\.dot)))
            var knowledge = VersionVector()
            for revision in sorted {
                #expect(knowledge.delivery(of: revision) == .ready, "\(revision.dot) is delivered in order")
                knowledge.add(revision.dot)
            }
        }
    }
}
