/// Puts revisions into a causal order: each after every other one of the same list it depends on
/// (its node's previous revision in the list, and the latest revision in the list of each node its
/// context names), and otherwise in the order given. A replica's log is causal as written, except
/// where work built on a forked branch stays while the branch is replaced (spec 13, step 8); a
/// bundle is therefore ordered on export and again on import.
public enum CausalSort {
    public static func sorted(_ revisions: [Revision]) -> [Revision] {
        var present: [NodeID: [UInt64]] = [:]
        for revision in revisions { present[revision.dot.node, default: []].append(revision.dot.counter) }
        for node in present.keys { present[node]!.sort() }
        /// The highest counter of `node` in the list that is at most `counter`.
        func latest(_ node: NodeID, atMost counter: UInt64) -> UInt64? {
            guard let counters = present[node], counter > 0 else { return nil }
            return counters.lastIndex(counterAtMost: counter) { $0 }.map { counters[$0] }
        }
        var emitted = Set<Dot>()
        var waiting: [Dot: [Int]] = [:]
        var missingCount = [Int](repeating: 0, count: revisions.count)
        var result: [Revision] = []
        result.reserveCapacity(revisions.count)
        var ready: [Int] = []
        func emit(_ first: Int) {
            ready.append(first)
            while let i = ready.popLast() {
                let dot = revisions[i].dot
                result.append(revisions[i])
                guard emitted.insert(dot).inserted else { continue }
                for j in (waiting.removeValue(forKey: dot) ?? []).reversed() {
                    missingCount[j] -= 1
                    if missingCount[j] == 0 { ready.append(j) }
                }
            }
        }
        for (i, revision) in revisions.enumerated() {
            var needs: Set<Dot> = []
            if let previous = latest(revision.dot.node, atMost: revision.dot.counter - 1) {
                needs.insert(Dot(node: revision.dot.node, counter: previous))
            }
            for node in revision.context.nodes where node != revision.dot.node {
                if let counter = latest(node, atMost: revision.context[node]) { needs.insert(Dot(node: node, counter: counter)) }
            }
            let missing = needs.filter { !emitted.contains($0) }
            if missing.isEmpty {
                emit(i)
            } else {
                missingCount[i] = missing.count
                for dot in missing { waiting[dot, default: []].append(i) }
            }
        }
        // What still waits is part of a cycle, which no valid history has: keep it, in the given order.
        if result.count < revisions.count {
            let placed = Set(result.map(\.dot))
            result += revisions.filter { !placed.contains($0.dot) }
        }
        return result
    }
}
