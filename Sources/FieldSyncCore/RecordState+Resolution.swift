extension RecordState {
    /// The conflicted paths that `revision` settles: its author may resolve, it writes the path,
    /// and its context covers at least one of the path's open disputes. Such a revision is a
    /// resolution. A revision by anyone else settles nothing, whatever its context (spec 6.3).
    ///
    /// It looks only at the registers the revision writes, so its cost does not grow with the
    /// record's other conflicts (it runs for every received revision, inside the write transaction).
    public func pathsSettled(by revision: Revision, authority: ResolutionAuthority) -> [String] {
        guard authority.mayResolve(revision.dot.node) else { return [] }
        return revision.writes.compactMap { write -> String? in
            guard write.key.element == nil, let log = logs[write.key] else { return nil }
            let covers = log.disputes.contains { revision.context.covers($0.low) && revision.context.covers($0.high) }
            return covers ? write.key.path : nil
        }.sorted(by: JSONValue.utf8Less)
    }

    /// The operations of a resolution of `path` to `value` (nil clears the field).
    public static func resolutionOperation(path: String, value: JSONValue?) -> FieldOperation {
        if let value { .set(path: path, value: value) } else { .unset(path: path) }
    }
}

/// What one revision did to a record's conflicts, found by replaying the record's history in the
/// order this replica received it. For `show --history`; reads of current state never replay.
public struct HistoryStep: Sendable, Equatable {
    public var revision: Revision
    /// Paths that were not in conflict before this revision and are after it.
    public var conflictsCreated: [String]
    /// Paths in conflict before this revision whose disputes it settled, in part or whole (a
    /// dispute it did not cover keeps the path in conflict).
    public var conflictsResolved: [String]

    /// One record's revisions in the causal order every replica reproduces: a revision comes after
    /// every revision in its context; among those free to come next, the earliest by (time, dot).
    ///
    /// O(n log n): instead of rescanning what is pending at every step, each revision waits for the
    /// latest revision of each node its context covers, and each node's revisions of the record
    /// wait for the one before them, so a revision is free exactly when nothing it covers is
    /// pending. Free revisions wait in a heap ordered by (time, dot).
    public static func canonicalOrder(_ revisions: [Revision]) -> [Revision] {
        let sorted = revisions.sorted { a, b in a.time != b.time ? a.time < b.time : a.dot < b.dot }
        let count = sorted.count
        guard count > 1 else { return sorted }
        // Per node, the record's revisions by counter, as positions in `sorted`.
        var byNode: [NodeID: [(counter: UInt64, position: Int)]] = [:]
        for (position, revision) in sorted.enumerated() { byNode[revision.dot.node, default: []].append((revision.dot.counter, position)) }
        for node in byNode.keys { byNode[node]!.sort { $0.counter < $1.counter } }
        func latest(_ node: NodeID, atMost counter: UInt64) -> Int? {
            guard let list = byNode[node] else { return nil }
            return list.lastIndex(counterAtMost: counter) { $0.counter }.map { list[$0].position }
        }
        var waitingOn = [Int](repeating: 0, count: count)
        var dependents = [[Int]](repeating: [], count: count)
        for (position, revision) in sorted.enumerated() {
            var needs = Set<Int>()
            for node in revision.context.nodes {
                if let other = latest(node, atMost: revision.context[node]), other != position { needs.insert(other) }
            }
            if revision.dot.counter > 1, let other = latest(revision.dot.node, atMost: revision.dot.counter - 1) { needs.insert(other) }
            waitingOn[position] = needs.count
            for other in needs { dependents[other].append(position) }
        }
        var free = MinHeap(sorted.indices.filter { waitingOn[$0] == 0 })
        var done = [Bool](repeating: false, count: count)
        var ordered: [Revision] = []
        ordered.reserveCapacity(count)
        while ordered.count < count {
            // A cycle cannot come from a causally delivered history; should one be given, take the
            // earliest pending revision, as the rescanning version did.
            guard let position = free.pop() ?? done.firstIndex(of: false) else { break }
            guard !done[position] else { continue }
            done[position] = true
            ordered.append(sorted[position])
            for next in dependents[position] {
                waitingOn[next] -= 1
                if waitingOn[next] == 0 { free.push(next) }
            }
        }
        return ordered
    }

    /// Replays `revisions` (one record's, in a causal order) and reports each step.
    public static func replay(_ revisions: [Revision], authority: ResolutionAuthority) -> [HistoryStep] {
        guard let first = revisions.first else { return [] }
        var state = RecordState(id: first.record)
        var steps: [HistoryStep] = []
        for revision in revisions {
            let before = Set(state.conflicts.map(\.path))
            let settled = state.pathsSettled(by: revision, authority: authority)
            state.apply(revision, authority: authority)
            let after = Set(state.conflicts.map(\.path))
            steps.append(
                HistoryStep(
                    revision: revision,
                    conflictsCreated: after.subtracting(before).sorted(by: JSONValue.utf8Less),
                    conflictsResolved: settled))
        }
        return steps
    }

    /// The value of `path` that every candidate's author had seen before they diverged: the latest
    /// write to the path covered by every candidate's context. Nil when there is none, or no single latest.
    public static func base(of conflict: Conflict, in revisions: [Revision]) -> Candidate? {
        let byDot = Dictionary(revisions.map { ($0.dot, $0) }, uniquingKeysWith: { a, _ in a })
        let contexts = conflict.candidates.compactMap { byDot[$0.dot]?.context }
        guard contexts.count == conflict.candidates.count else { return nil }
        let key = RegisterKey(path: conflict.path)
        let ancestors = revisions.filter { revision in
            contexts.allSatisfy { $0.covers(revision.dot) } && revision.writes.contains { $0.key == key }
        }
        let latest = ancestors.filter { candidate in
            ancestors.allSatisfy { other in other.dot == candidate.dot || candidate.context.covers(other.dot) }
        }
        guard latest.count == 1, let write = latest[0].writes.first(where: { $0.key == key }) else { return nil }
        return Candidate(dot: latest[0].dot, value: write.value, author: latest[0].author, time: latest[0].time)
    }
}
