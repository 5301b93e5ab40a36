extension RecordState {
    /// The conflicted paths that `revision` settles: it writes the path, and its context covers two
    /// or more of the path's current candidates. Such a revision is a resolution.
    public func pathsSettled(by revision: Revision) -> [String] {
        let conflicted = Set(conflicts.map(\.path))
        return revision.writes.compactMap { write -> String? in
            guard write.key.element == nil, conflicted.contains(write.key.path) else { return nil }
            let covered = candidates(at: write.key.path).filter { revision.context.covers($0.dot) }
            return covered.count >= 2 ? write.key.path : nil
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
    /// Paths in conflict before this revision whose candidates it settled (a candidate that arrived
    /// later, concurrently, may keep the path in conflict).
    public var conflictsResolved: [String]

    /// One record's revisions in the causal order every replica reproduces: a revision comes after
    /// every revision in its context; among those free to come next, the earliest by (time, dot).
    public static func canonicalOrder(_ revisions: [Revision]) -> [Revision] {
        var pending = revisions.sorted { a, b in a.time != b.time ? a.time < b.time : a.dot < b.dot }
        var ordered: [Revision] = []
        ordered.reserveCapacity(pending.count)
        while !pending.isEmpty {
            // Ready: no revision still pending is in its context (counters of a node rise with time).
            let index = pending.firstIndex { r in
                !pending.contains { other in other.dot != r.dot && r.context.covers(other.dot) }
            } ?? 0
            ordered.append(pending.remove(at: index))
        }
        return ordered
    }

    /// Replays `revisions` (one record's, in a causal order) and reports each step.
    public static func replay(_ revisions: [Revision]) -> [HistoryStep] {
        guard let first = revisions.first else { return [] }
        var state = RecordState(id: first.record)
        var steps: [HistoryStep] = []
        for revision in revisions {
            let before = Set(state.conflicts.map(\.path))
            let settled = state.pathsSettled(by: revision)
            state.apply(revision)
            let after = Set(state.conflicts.map(\.path))
            steps.append(HistoryStep(
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
