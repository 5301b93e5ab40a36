import FieldSyncSeededRandom
import PropertyBased
import Testing

@testable import FieldSyncCore

/// The conflict rule of spec 6.3, on random histories in which replica 0 is the only admin and
/// documenters sometimes sign revisions with a partial context, as a modified client may.
@Suite struct ConflictRuleProperties {
    /// Every replica holding the same revisions computes the same conflicts, whatever the order
    /// of arrival, and they are exactly those the rule's definition gives.
    @Test func conflictsDependOnlyOnTheRevisionsHeld() async {
        var conflictsSeen = 0
        await propertyCheck(count: 120, input: MergeLawTests.replicaCounts, MergeLawTests.recordCounts, MergeLawTests.seeds) { n, r, seed in
            var rng = SplitMix64(seed: seed)
            var world = try World.randomWithHostileContexts(replicas: n, records: r, using: &rng)
            try world.syncAll()
            let reference = world.replicas[0]
            for replica in world.replicas { #expect(replica.canonicalBytes == reference.canonicalBytes) }
            for _ in 0..<2 {
                var shuffled = ReplicaState(authority: reference.authority)
                try World.deliverInRandomCausalOrder(world.authored, to: &shuffled, using: &rng)
                #expect(shuffled.canonicalBytes == reference.canonicalBytes)
            }
            for (id, state) in reference.records {
                let revisions = world.authored.filter { $0.record == id }
                let expected = Self.conflictedPaths(revisions, authority: reference.authority)
                #expect(Set(state.conflicts.map(\.path)) == expected, "record \(id)")
                conflictsSeen += expected.count
            }
        }
        #expect(conflictsSeen > 0)
    }

    /// Once a path is in conflict on a replica, no revision by a non-admin ends it, whatever its
    /// context; and an admin's revision that covers every candidate of a path ends its conflict.
    @Test func onlyAnAdminEndsAConflict() async {
        var endedByAdmin = 0
        var keptDespiteDocumenters = 0
        await propertyCheck(count: 120, input: MergeLawTests.replicaCounts, MergeLawTests.recordCounts, MergeLawTests.seeds) { n, r, seed in
            var rng = SplitMix64(seed: seed)
            var world = try World.randomWithHostileContexts(replicas: n, records: r, using: &rng)
            var scratch = ReplicaState(authority: world.replicas[0].authority)
            let order = try World.deliverInRandomCausalOrder(world.authored, to: &scratch, using: &rng)
            var fresh = ReplicaState(authority: scratch.authority)
            for revision in order {
                let before = Set(fresh.records[revision.record]?.conflicts.map(\.path) ?? [])
                try fresh.receive(revision)
                let after = Set(fresh.records[revision.record]!.conflicts.map(\.path))
                if revision.dot.node != world.nodes[0] {
                    #expect(after.isSuperset(of: before), "\(revision.dot) by a documenter ended \(before.subtracting(after))")
                    if !before.isEmpty { keptDespiteDocumenters += 1 }
                }
            }
            // The admin settles everything it sees: every path of every record is then out of conflict.
            try world.syncAll()
            for id in world.replicas[0].records.keys.sorted() {
                let state = world.replicas[0].records[id]!
                let paths = state.conflicts.map(\.path).filter { $0 != "deleted" }
                guard !paths.isEmpty, !state.isConflicted(at: "deleted") else { continue }
                let operations = paths.map { RecordState.resolutionOperation(path: $0, value: state.value(at: $0)) }
                try world.author(on: 0, record: id, kind: .put, operations: operations, using: &rng)
                #expect(world.replicas[0].records[id]!.conflicts.isEmpty)
                endedByAdmin += 1
            }
        }
        #expect(endedByAdmin > 0)
        #expect(keptDespiteDocumenters > 0)
    }

    /// The rule's definition, by brute force over every pair of writes: a scalar path is in conflict
    /// when two writes of it are concurrent (neither context covers the other) and differ in
    /// value, and no write of it by an author who may resolve has a context covering both.
    static func conflictedPaths(_ revisions: [Revision], authority: ResolutionAuthority) -> Set<String> {
        var writes: [String: [(revision: Revision, value: JSONValue?)]] = [:]
        for revision in revisions {
            for write in revision.writes where write.key.element == nil {
                writes[write.key.path, default: []].append((revision, write.value))
            }
        }
        var paths = Set<String>()
        for (path, list) in writes {
            let resolutions = list.map(\.revision).filter { authority.mayResolve($0.dot.node) }
            search: for i in list.indices {
                for j in list.indices where i < j {
                    let (a, b) = (list[i], list[j])
                    guard a.value != b.value, !a.revision.context.covers(b.revision.dot), !b.revision.context.covers(a.revision.dot) else {
                        continue
                    }
                    if !resolutions.contains(where: { $0.context.covers(a.revision.dot) && $0.context.covers(b.revision.dot) }) {
                        paths.insert(path)
                        break search
                    }
                }
            }
        }
        return paths
    }
}

extension World {
    /// Like ``random(replicas:records:using:)``, with replica 0 the only admin, and a third of the
    /// edits by other replicas signed with a context that leaves out part of what they hold.
    static func randomWithHostileContexts<R: RandomNumberGenerator>(replicas: Int, records: Int, using rng: inout R) throws -> World {
        var world = World(replicas: replicas, records: records, admins: [0], using: &rng)
        for step in 0..<Int.random(in: 5...40, using: &rng) {
            if step == 0 || Int.random(in: 0..<100, using: &rng) < 60 {
                let i = Int.random(in: world.replicas.indices, using: &rng)
                if i != 0, Int.random(in: 0..<3, using: &rng) == 0 {
                    try world.partialContextEdit(on: i, using: &rng)
                } else {
                    try world.randomEdit(using: &rng)
                }
            } else {
                try world.randomExchange(using: &rng)
            }
        }
        return world
    }

    /// An edit of a record replica `i` holds whose context covers, per node, a random prefix of
    /// what it holds: valid for causal delivery, but blind to some revisions on purpose.
    mutating func partialContextEdit<R: RandomNumberGenerator>(on i: Int, using rng: inout R) throws {
        guard let record = replicas[i].records.keys.sorted().randomElement(using: &rng), let current = replicas[i].records[record] else {
            return
        }
        var context = VersionVector()
        for node in current.version.nodes { context[node] = UInt64.random(in: 0...current.version[node], using: &rng) }
        let operations: [FieldOperation]
        let kind: Revision.Kind = Int.random(in: 0..<5, using: &rng) == 0 ? .delete : .put
        if kind == .delete {
            operations = []
        } else {
            let field = ["narrative", "status", "casualties.killed"].randomElement(using: &rng)!
            let value = Self.scalarPools[field]!.randomElement(using: &rng)!
            operations = [RecordState.resolutionOperation(path: field, value: value)]
        }
        let node = nodes[i]
        let revision = Revision(
            dot: Dot(node: node, counter: replicas[i].knowledge[node] + 1), record: record, kind: kind, operations: operations,
            context: context, author: "reporter-\(i)", time: 1_741_000_000_000 + Int64.random(in: 0...3, using: &rng))
        try replicas[i].receive(revision)
        authored.append(revision)
    }
}
