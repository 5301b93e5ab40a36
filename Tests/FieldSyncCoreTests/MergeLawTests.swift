import FieldSyncSeededRandom
import PropertyBased
import Testing

@testable import FieldSyncCore

/// The merge laws, checked on random histories of a few in-memory replicas (``ReplicaState``).
///
/// Every property takes the number of replicas (2–4), the number of records (1–3) and a seed; the seed drives
/// everything else through ``SplitMix64``, so a reported failing input reproduces the whole history.
@Suite struct MergeLawTests {
    static let replicaCounts = Gen.int(in: 2...4)
    static let recordCounts = Gen.int(in: 1...3)
    static let seeds = Gen.uint64()

    // MARK: Convergence

    /// Replicas holding the same revisions have identical state, whatever order the revisions arrived in.
    @Test func convergence() async {
        var equalKnowledgeComparisons = 0
        await propertyCheck(count: 150, input: Self.replicaCounts, Self.recordCounts, Self.seeds) { n, r, seed in
            var rng = SplitMix64(seed: seed)
            var world = try World.random(replicas: n, records: r, using: &rng)
            equalKnowledgeComparisons += world.equalKnowledgeComparisons

            try world.syncAll()
            // The direct encoder of stored states writes exactly the canonical encoding.
            // The stored form (candidates named in the logs) reads back as the same state, and is
            // the same text on every replica.
            for state in world.replicas[0].records.values {
                #expect(state.canonicalText == state.json.canonicalText)
                #expect(try RecordState(json: JSONValue(parsing: state.storedText)) == state)
                #expect(try RecordState(json: JSONValue(parsing: state.canonicalText)) == state)
                #expect(state.storedText.utf8.count <= state.canonicalText.utf8.count)
                for replica in world.replicas.dropFirst() { #expect(replica.records[state.id]?.storedText == state.storedText) }
            }
            let everything = VersionVector(
                world.authored.reduce(into: [NodeID: UInt64]()) { $0[$1.dot.node] = max($0[$1.dot.node] ?? 0, $1.dot.counter) })
            let reference = world.replicas[0].canonicalBytes
            #expect(!reference.isEmpty)
            for replica in world.replicas {
                #expect(replica.knowledge == everything)
                #expect(replica.log.count == world.authored.count)
                #expect(replica.canonicalBytes == reference)
                #expect(replica.records == world.replicas[0].records)
            }

            // A fresh replica fed the authoring order, and two fed random causal orders of the whole history.
            var inAuthoringOrder = ReplicaState()
            for revision in world.authored { try inAuthoringOrder.receive(revision) }
            #expect(inAuthoringOrder.canonicalBytes == reference)
            for _ in 0..<2 {
                var shuffled = ReplicaState()
                let order = try World.deliverInRandomCausalOrder(world.authored, to: &shuffled, using: &rng)
                #expect(order.count == world.authored.count)
                #expect(shuffled.canonicalBytes == reference)
                #expect(shuffled.records == world.replicas[0].records)
            }

            // Arbitrary arrival order, holding back what cannot be applied yet, as a sync session does.
            var buffered = ReplicaState()
            var pending = world.authored.shuffled(using: &rng)
            while !pending.isEmpty {
                var held: [Revision] = []
                for revision in pending {
                    do { try buffered.receive(revision) } catch { held.append(revision) }
                }
                #expect(held.count < pending.count, "no progress")
                if held.count == pending.count { break }
                pending = held
            }
            #expect(buffered.canonicalBytes == reference)
        }
        #expect(equalKnowledgeComparisons > 0)
    }

    // MARK: Idempotence

    /// Receiving or applying a revision a second time changes nothing.
    @Test func idempotence() async {
        await propertyCheck(count: 150, input: Self.replicaCounts, Self.recordCounts, Self.seeds) { n, r, seed in
            var rng = SplitMix64(seed: seed)
            var world = try World.random(replicas: n, records: r, using: &rng)

            for before in world.replicas {
                var replica = before
                for revision in before.log + before.log.shuffled(using: &rng) {
                    let applied = try replica.receive(revision)
                    #expect(!applied)
                }
                #expect(replica == before)
                for revision in before.log {
                    var state = try #require(before.records[revision.record])
                    let applied = state.apply(revision)
                    #expect(!applied)
                    #expect(state == before.records[revision.record])
                }
            }

            // After a full sync, another round of exchanges and a replay of the whole history change nothing.
            try world.syncAll()
            let synced = world.replicas
            for s in world.replicas.indices {
                for t in world.replicas.indices where s != t {
                    #expect(world.replicas[s].missing(from: world.replicas[t].knowledge).isEmpty)
                }
            }
            for i in world.replicas.indices {
                for revision in world.authored {
                    let applied = try world.replicas[i].receive(revision)
                    #expect(!applied)
                }
            }
            #expect(world.replicas == synced)

            // Re-delivering already held revisions in the middle of a delivery does not disturb the result.
            var stuttering = ReplicaState()
            for revision in world.authored {
                try stuttering.receive(revision)
                let again = stuttering.log.randomElement(using: &rng)!
                let applied = try stuttering.receive(again)
                #expect(!applied)
            }
            #expect(stuttering.canonicalBytes == synced[0].canonicalBytes)
        }
    }

    // MARK: Commutativity

    /// Two concurrent revisions of the same record, both ready on the same state, give the same state in either order.
    @Test func commutativityOfConcurrentRevisions() async {
        var pairsChecked = 0
        await propertyCheck(count: 150, input: Self.replicaCounts, Self.recordCounts, Self.seeds) { n, r, seed in
            var rng = SplitMix64(seed: seed)
            var world = try World.random(replicas: n, records: r, using: &rng)
            try world.concurrentBurst(using: &rng)

            var scratch = ReplicaState()
            let order = try World.deliverInRandomCausalOrder(world.authored, to: &scratch, using: &rng)
            var base = ReplicaState()
            for k in order.indices {
                let ready = order[k...].filter { base.knowledge.delivery(of: $0) == .ready }
                for (x, a) in ready.enumerated() {
                    for b in ready[(x + 1)...] {
                        #expect(!a.context.covers(b.dot) && !b.context.covers(a.dot), "ready together means concurrent")
                        var replicaAB = base
                        try replicaAB.receive(a)
                        try replicaAB.receive(b)
                        var replicaBA = base
                        try replicaBA.receive(b)
                        try replicaBA.receive(a)
                        #expect(replicaAB.records == replicaBA.records)
                        #expect(replicaAB.canonicalBytes == replicaBA.canonicalBytes)
                        guard a.record == b.record else { continue }
                        let start = base.records[a.record] ?? RecordState(id: a.record)
                        var ab = start
                        ab.apply(a)
                        ab.apply(b)
                        var ba = start
                        ba.apply(b)
                        ba.apply(a)
                        #expect(ab == ba, "\(a.dot) and \(b.dot)")
                        #expect(ab.json.canonicalBytes == ba.json.canonicalBytes)
                        pairsChecked += 1
                    }
                }
                try base.receive(order[k])
            }
        }
        #expect(pairsChecked > 100)
    }

    // MARK: Causal gaps

    /// A revision whose predecessor (previous revision of its node, or anything in its context) is missing
    /// throws ``CausalGap`` and leaves the replica exactly as it was.
    @Test func causalGapRejection() async {
        var gapsChecked = 0
        await propertyCheck(count: 150, input: Self.replicaCounts, Self.recordCounts, Self.seeds) { n, r, seed in
            var rng = SplitMix64(seed: seed)
            let world = try World.random(replicas: n, records: r, using: &rng)
            var scratch = ReplicaState()
            let order = try World.deliverInRandomCausalOrder(world.authored, to: &scratch, using: &rng)

            var base = ReplicaState()
            var held = Set<Dot>()
            for k in order.indices {
                for revision in order[k...] {
                    let dot = revision.dot
                    let predecessorHeld = dot.counter == 1 || held.contains(Dot(node: dot.node, counter: dot.counter - 1))
                    let contextHeld = revision.context.nodes.allSatisfy { held.contains(Dot(node: $0, counter: revision.context[$0])) }
                    if predecessorHeld && contextHeld {
                        #expect(base.knowledge.delivery(of: revision) == .ready)
                        continue
                    }
                    var copy = base
                    do throws(CausalGap) {
                        try copy.receive(revision)
                        Issue.record("\(dot) was applied although a revision it depends on is missing")
                    } catch {
                        #expect(error.dot == dot)
                        #expect(!error.missing.isEmpty)
                    }
                    #expect(copy == base)
                    gapsChecked += 1
                }
                try base.receive(order[k])
                held.insert(order[k].dot)
            }
            for revision in order { #expect(base.knowledge.delivery(of: revision) == .duplicate) }

            // Every revision but a node's first depends on something, so a fresh replica rejects it.
            for revision in world.authored where revision.dot.counter > 1 || !revision.context.isEmpty {
                var fresh = ReplicaState()
                #expect(throws: CausalGap.self) { try fresh.receive(revision) }
                #expect(fresh == ReplicaState())
            }
        }
        #expect(gapsChecked > 100)
    }

    // MARK: No silent loss

    /// Every write that no later revision superseded is among the candidates of its register, and nothing else is.
    @Test func noSilentLoss() async {
        await propertyCheck(count: 150, input: Self.replicaCounts, Self.recordCounts, Self.seeds) { n, r, seed in
            var rng = SplitMix64(seed: seed)
            var world = try World.random(replicas: n, records: r, using: &rng)
            for replica in world.replicas { Self.expectNoSilentLoss(in: replica) }
            try world.syncAll()
            Self.expectNoSilentLoss(in: world.replicas[0])
        }
    }

    static func expectNoSilentLoss(in replica: ReplicaState, sourceLocation: SourceLocation = #_sourceLocation) {
        for (id, state) in replica.records {
            let revisions = replica.log.filter { $0.record == id }
            var expected: [RegisterKey: Set<Candidate>] = [:]
            for revision in revisions {
                for write in revision.writes {
                    let superseded = revisions.contains { later in
                        later.dot != revision.dot && later.context.covers(revision.dot) && later.writes.contains { $0.key == write.key }
                    }
                    if superseded { continue }
                    let candidate = Candidate(dot: revision.dot, value: write.value, author: revision.author, time: revision.time)
                    expected[write.key, default: []].insert(candidate)
                    #expect(
                        state.registers[write.key]?.contains(candidate) == true,
                        "\(revision.dot)'s write of \(write.key) was lost", sourceLocation: sourceLocation)
                }
            }
            #expect(state.registers.mapValues { Set($0) } == expected, "a superseded write survived", sourceLocation: sourceLocation)
            for candidates in state.registers.values {
                #expect(
                    zip(candidates, candidates.dropFirst()).allSatisfy { Candidate.displayOrder($0, $1) }, sourceLocation: sourceLocation)
            }
            #expect(
                state.version == VersionVector(revisions.reduce(into: [:]) { $0[$1.dot.node] = max($0[$1.dot.node] ?? 0, $1.dot.counter) }))
        }
    }

    // MARK: Conflicts

    /// Replicas that write different values to the same field concurrently produce a conflict holding every value.
    @Test func concurrentSameFieldDifferentValuesConflict() async {
        await propertyCheck(count: 150, input: Self.replicaCounts, Self.recordCounts, Self.seeds) { n, r, seed in
            var rng = SplitMix64(seed: seed)
            var world = try World.random(replicas: n, records: r, using: &rng)
            let record = try world.syncedRecord(using: &rng)
            let field = World.scalarPools.keys.sorted().randomElement(using: &rng)!
            let writers = Array(world.replicas.indices.shuffled(using: &rng).prefix(Int.random(in: 2...n, using: &rng)))
            let values = Array(World.scalarPools[field]!.shuffled(using: &rng).prefix(writers.count))
            guard values.count == writers.count else { return }  // the pool is smaller than the number of writers

            var written: [Dot: JSONValue?] = [:]
            for (writer, value) in zip(writers, values) {
                let op: FieldOperation = value.map { .set(path: field, value: $0) } ?? .unset(path: field)
                let revision = try world.author(on: writer, record: record, kind: .put, operations: [op], using: &rng)
                written[revision.dot] = value
            }
            try world.syncAll()

            for replica in world.replicas {
                let state = try #require(replica.records[record])
                let conflict = try #require(state.conflicts.first(where: { $0.path == field }), "no conflict on \(field)")
                #expect(state.isConflicted)
                #expect(Dictionary(uniqueKeysWithValues: conflict.candidates.map { ($0.dot, $0.value) }) == written)
                #expect(conflict.candidates == state.candidates(at: field))
                #expect(zip(conflict.candidates, conflict.candidates.dropFirst()).allSatisfy { Candidate.displayOrder($0, $1) })
                #expect(state.value(at: field) == conflict.candidates.last!.value)
                #expect(!state.conflicts.contains { $0.path == "deleted" }, "every writer wrote a put")
            }
        }
    }

    /// Concurrent writes of the same value to the same field agree, so they are not a conflict.
    @Test func concurrentSameFieldSameValueDoesNotConflict() async {
        await propertyCheck(count: 100, input: Self.replicaCounts, Self.recordCounts, Self.seeds) { n, r, seed in
            var rng = SplitMix64(seed: seed)
            var world = try World.random(replicas: n, records: r, using: &rng)
            let record = try world.syncedRecord(using: &rng)
            let field = World.scalarPools.keys.sorted().randomElement(using: &rng)!
            let value = World.scalarPools[field]!.randomElement(using: &rng)!
            let op: FieldOperation = value.map { .set(path: field, value: $0) } ?? .unset(path: field)
            for writer in world.replicas.indices { try world.author(on: writer, record: record, kind: .put, operations: [op], using: &rng) }
            try world.syncAll()
            let state = try #require(world.replicas[0].records[record])
            #expect(state.candidates(at: field).count == n)
            #expect(!state.conflicts.contains { $0.path == field })
            #expect(state.value(at: field) == value)
        }
    }

    /// Concurrent writes to different fields never conflict: each field takes its single new value, and
    /// conflicts elsewhere in the record are untouched.
    @Test func concurrentDifferentFieldWritesNeverConflict() async {
        await propertyCheck(count: 150, input: Self.replicaCounts, Self.recordCounts, Self.seeds) { n, r, seed in
            var rng = SplitMix64(seed: seed)
            var world = try World.random(replicas: n, records: r, using: &rng)
            let record = try world.syncedRecord(using: &rng)
            let base = try #require(world.replicas[0].records[record])
            let baseConflicts = Set(base.conflicts.map(\.path))

            let fields = World.scalarPools.keys.sorted().shuffled(using: &rng)
            let tagPool = World.tagPool.shuffled(using: &rng)
            var expectedValues: [String: JSONValue?] = [:]
            var expectedTags = Set(base.elements(of: "tags"))
            for (writer, field) in zip(world.replicas.indices, fields) {
                let value = World.scalarPools[field]!.randomElement(using: &rng)!
                var ops: [FieldOperation] = [value.map { .set(path: field, value: $0) } ?? .unset(path: field)]
                // Each writer also changes its own tag: a different register from every other writer's.
                let tag = tagPool[writer]
                if Bool.random(using: &rng) {
                    ops.append(.add(path: "tags", element: tag))
                    expectedTags.insert(tag)
                } else {
                    ops.append(.remove(path: "tags", element: tag))
                    expectedTags.remove(tag)
                }
                try world.author(on: writer, record: record, kind: .put, operations: ops, using: &rng)
                expectedValues[field] = value
            }
            try world.syncAll()

            let expectedConflicts = baseConflicts.subtracting(expectedValues.keys).subtracting(["deleted"])
            for replica in world.replicas {
                let state = try #require(replica.records[record])
                #expect(Set(state.conflicts.map(\.path)) == expectedConflicts)
                for (field, value) in expectedValues {
                    #expect(state.candidates(at: field).count == 1)
                    #expect(state.value(at: field) == value)
                }
                #expect(Set(state.elements(of: "tags")) == expectedTags)
                #expect(!state.isDeleted)
            }
        }
    }

    // MARK: Worked examples

    @Test func aLaterWriteSupersedesAnEarlierOne() {
        var state = RecordState(id: Fixture.record)
        let first = Fixture.revision(Fixture.nodeA, 1, [.set(path: "title", value: "A")])
        let second = Fixture.revision(Fixture.nodeB, 1, [.set(path: "title", value: "B")], context: Fixture.vector((Fixture.nodeA, 1)))
        let appliedFirst = state.apply(first)
        let appliedSecond = state.apply(second)
        #expect(appliedFirst && appliedSecond)
        #expect(state.candidates(at: "title").map(\.value) == ["B"])
        #expect(state.value(at: "title") == "B")
        #expect(!state.isConflicted)
        #expect(state.version == Fixture.vector((Fixture.nodeA, 1), (Fixture.nodeB, 1)))
    }

    @Test func displayWinnerIsLatestTimeThenGreatestDot() {
        let create = Fixture.revision(Fixture.nodeA, 1, [.set(path: "title", value: "T")])
        let context = Fixture.vector((Fixture.nodeA, 1))
        let early = Fixture.revision(Fixture.nodeC, 1, [.set(path: "narrative", value: "early")], context: context, time: 5)
        let late = Fixture.revision(Fixture.nodeB, 1, [.set(path: "narrative", value: "late")], context: context, time: 9)
        let tie = Fixture.revision(Fixture.nodeA, 2, [.set(path: "narrative", value: "tie")], context: context, time: 9)
        for order in [[early, late, tie], [tie, late, early], [late, tie, early]] {
            var state = RecordState(id: Fixture.record)
            state.apply(create)
            for revision in order { state.apply(revision) }
            #expect(state.candidates(at: "narrative").map(\.value) == ["early", "tie", "late"])
            #expect(state.value(at: "narrative") == "late")
            #expect(state.conflicts.map(\.path) == ["narrative"])
        }
    }

    @Test func deleteConcurrentWithAnEditConflictsAndShowsTheEdit() {
        let create = Fixture.revision(Fixture.nodeA, 1, [.set(path: "title", value: "T")])
        let context = Fixture.vector((Fixture.nodeA, 1))
        let delete = Fixture.revision(Fixture.nodeA, 2, kind: .delete, context: context)
        let edit = Fixture.revision(Fixture.nodeB, 1, [.set(path: "narrative", value: "more")], context: context)
        var state = RecordState(id: Fixture.record)
        state.apply(create)
        state.apply(delete)
        #expect(state.isDeleted)
        state.apply(edit)
        #expect(!state.isDeleted)
        #expect(state.conflicts.map(\.path) == ["deleted"])
        #expect(state.fields == ["title": "T", "narrative": "more"])

        // A delete that has seen the edit settles it.
        let resolve = Fixture.revision(Fixture.nodeA, 3, kind: .delete, context: state.version)
        #expect(state.pathsSettled(by: resolve) == ["deleted"])
        state.apply(resolve)
        #expect(state.isDeleted)
        #expect(!state.isConflicted)
    }

    @Test func concurrentAddAndRemoveOfAnElementKeepsIt() {
        let create = Fixture.revision(Fixture.nodeA, 1, [.set(path: "title", value: "T"), .add(path: "tags", element: "x")])
        let context = Fixture.vector((Fixture.nodeA, 1))
        let remove = Fixture.revision(Fixture.nodeA, 2, [.remove(path: "tags", element: "x")], context: context)
        let add = Fixture.revision(Fixture.nodeB, 1, [.add(path: "tags", element: "x")], context: context)
        var state = RecordState(id: Fixture.record)
        state.apply(create)
        state.apply(remove)
        #expect(state.elements(of: "tags") == [])
        state.apply(add)
        #expect(state.elements(of: "tags") == ["x"])
        #expect(!state.isConflicted, "set elements never conflict")
        #expect(state.fields["tags"] == ["x"])
    }

    @Test func aRevisionMissingItsPredecessorIsAGap() throws {
        var replica = ReplicaState()
        let first = Fixture.revision(Fixture.nodeA, 1, [.set(path: "title", value: "T")])
        let second = Fixture.revision(Fixture.nodeA, 2, [.set(path: "narrative", value: "n")], context: Fixture.vector((Fixture.nodeA, 1)))
        let gap = #expect(throws: CausalGap.self) { try replica.receive(second) }
        #expect(gap == CausalGap(dot: Dot(node: Fixture.nodeA, counter: 2), missing: "\(Fixture.nodeA):1…1"))
        #expect(replica == ReplicaState())
        let receivedFirst = try replica.receive(first)
        let receivedSecond = try replica.receive(second)
        let receivedAgain = try replica.receive(first)
        #expect(receivedFirst && receivedSecond && !receivedAgain)
        #expect(replica.log.map(\.dot.counter) == [1, 2])
    }
}

extension MergeLawTests {
    /// Swift compares strings by canonical equivalence, but register keys compare by UTF-8 bytes: "café"
    /// (U+00E9) and "café" (e + U+0301) are two registers, so the arrival order cannot change the state.
    @Test func canonicallyEquivalentElementsConvergeByteForByte() throws {
        let composed = "caf\u{E9}"
        let decomposed = "cafe\u{301}"
        let create = Fixture.revision(Fixture.nodeA, 1, [.set(path: "title", value: "T")])
        let context = Fixture.vector((Fixture.nodeA, 1))
        let x = Fixture.revision(Fixture.nodeB, 1, [.add(path: "tags", element: composed)], context: context)
        let y = Fixture.revision(Fixture.nodeC, 1, [.add(path: "tags", element: decomposed)], context: context)
        var first = ReplicaState()
        var second = ReplicaState()
        for revision in [create, x, y] { try first.receive(revision) }
        for revision in [create, y, x] { try second.receive(revision) }
        #expect(first.knowledge == second.knowledge)
        #expect(first.canonicalBytes == second.canonicalBytes)
        #expect(first.records.values.first?.elements(of: "tags").count == 2)
    }
}

extension ReplicaState {
    /// The canonical state as bytes: String `==` treats canonically equivalent text as equal, bytes do not.
    var canonicalBytes: [UInt8] { Array(canonicalState.utf8) }
}

/// A random history on a few in-memory replicas, built through ``LocalEdit`` as the CLI builds edits.
struct World {
    var nodes: [NodeID]
    var replicas: [ReplicaState]
    let records: [RecordID]
    /// Every revision, in the order it was authored: a causal order.
    var authored: [Revision] = []
    /// How many pairs of replicas with equal knowledge were compared along the way.
    var equalKnowledgeComparisons = 0

    static let titles: [JSONValue] = ["Shelling", "Airstrike", "Raid"]
    static let tagPool = ["urgent", "verified", "shelling", "needs-review"]
    /// Scalar fields and the values (nil clears) that random edits write to them.
    static let scalarPools: [String: [JSONValue?]] = [
        "title": titles,
        // Texts of 16 bytes or more too, which stored states name by their candidate (`storedText`).
        "narrative": [nil, "one", "two", "Witnesses saw the convoy stop at the bridge", "The market burned until dawn"],
        "status": Vocabulary.status.map(JSONValue.string),
        "casualties.killed": [nil, 0, 1, 2, 3],
        "location.place": [nil, "Old market", "School", "The old market of the eastern quarter"],
        "custom.ref": [nil, 7, ["a": [1, 2]], "x"],
    ]

    init<R: RandomNumberGenerator>(replicas count: Int, records recordCount: Int, using rng: inout R) {
        self.init(replicas: count, records: recordCount, admins: nil, using: &rng)
    }

    /// `admins`: indices of the replicas whose nodes may resolve; nil for everyone (unenrolled).
    init<R: RandomNumberGenerator>(replicas count: Int, records recordCount: Int, admins: Set<Int>?, using rng: inout R) {
        var nodes: [NodeID] = []
        while nodes.count < count {
            let node = NodeID.random(using: &rng)
            if !nodes.contains(node) { nodes.append(node) }
        }
        self.nodes = nodes
        let authority: ResolutionAuthority = admins.map { .admins(Set($0.map { nodes[$0] })) } ?? .everyone
        replicas = Array(repeating: ReplicaState(authority: authority), count: count)
        records = (0..<recordCount).map { RecordID.generate(millisecondsSince1970: 1_741_000_000_000 + Int64($0), using: &rng) }
    }

    /// A world after 5–40 random steps: local edits (mostly, and always first) and partial or full exchanges.
    static func random<R: RandomNumberGenerator>(replicas: Int, records: Int, using rng: inout R) throws -> World {
        var world = World(replicas: replicas, records: records, using: &rng)
        for step in 0..<Int.random(in: 5...40, using: &rng) {
            if step == 0 || Int.random(in: 0..<100, using: &rng) < 60 {
                try world.randomEdit(using: &rng)
            } else {
                try world.randomExchange(using: &rng)
            }
            world.compareReplicasWithEqualKnowledge()
        }
        return world
    }

    /// Authors a revision on replica `i`: the next counter of its node, and the record as it holds it as context.
    @discardableResult
    mutating func author<R: RandomNumberGenerator>(
        on i: Int, record: RecordID, kind: Revision.Kind, operations: [FieldOperation], using rng: inout R
    ) throws -> Revision {
        let node = nodes[i]
        let revision = Revision(
            dot: Dot(node: node, counter: replicas[i].knowledge[node] + 1), record: record, kind: kind,
            operations: operations, context: replicas[i].records[record]?.version ?? VersionVector(),
            author: "reporter-\(i)", time: 1_741_000_000_000 + Int64.random(in: 0...3, using: &rng))
        let applied = try replicas[i].receive(revision)
        #expect(applied, "a replica can always apply its own new revision")
        authored.append(revision)
        return revision
    }

    mutating func randomEdit<R: RandomNumberGenerator>(using rng: inout R) throws {
        let i = Int.random(in: replicas.indices, using: &rng)
        let record = records.randomElement(using: &rng)!
        let current = replicas[i].records[record]
        if current != nil, Int.random(in: 0..<8, using: &rng) == 0 {
            try author(on: i, record: record, kind: .delete, operations: [], using: &rng)
            return
        }
        let changes = Self.randomChanges(current: current, using: &rng)
        let operations = try LocalEdit.operations(for: changes, current: current, newEntryID: { "e1" })
        try author(on: i, record: record, kind: .put, operations: operations, using: &rng)
    }

    static func randomChanges<R: RandomNumberGenerator>(current: RecordState?, using rng: inout R) -> [FieldChange] {
        var changes: [FieldChange] = []
        if current == nil || Int.random(in: 0..<4, using: &rng) == 0 {
            changes.append(.set(path: "title", value: titles.randomElement(using: &rng)!))
        }
        let fields = ["narrative", "status", "casualties.killed", "custom.ref", "tags"].shuffled(using: &rng)
        for field in fields.prefix(Int.random(in: 0...3, using: &rng)) {
            if field == "tags" {
                let present = current?.elements(of: "tags") ?? []
                switch Int.random(in: 0..<4, using: &rng) {
                case 0 where !present.isEmpty:
                    changes.append(.remove(path: "tags", element: present.randomElement(using: &rng)!))
                case 1:
                    let wanted = tagPool.filter { _ in Bool.random(using: &rng) }
                    changes.append(.set(path: "tags", value: .array(wanted.map(JSONValue.string))))
                default:
                    changes.append(.add(path: "tags", element: tagPool.randomElement(using: &rng)!))
                }
            } else if let value = scalarPools[field]!.randomElement(using: &rng)! {
                changes.append(.set(path: field, value: value))
            } else {
                changes.append(.unset(path: field))
            }
        }
        return changes
    }

    /// Sends some or all of what one replica has and another lacks, in the sender's log order.
    mutating func randomExchange<R: RandomNumberGenerator>(using rng: inout R) throws {
        let sender = Int.random(in: replicas.indices, using: &rng)
        let receiver = (sender + Int.random(in: 1..<replicas.count, using: &rng)) % replicas.count
        let missing = replicas[sender].missing(from: replicas[receiver].knowledge)
        let count = Bool.random(using: &rng) ? missing.count : Int.random(in: 0...missing.count, using: &rng)
        for revision in missing.prefix(count) {
            let applied = try replicas[receiver].receive(revision)
            #expect(applied)
        }
    }

    mutating func exchange(from sender: Int, to receiver: Int) throws {
        for revision in replicas[sender].missing(from: replicas[receiver].knowledge) {
            let applied = try replicas[receiver].receive(revision)
            #expect(applied)
        }
    }

    /// Everyone sends to replica 0, then replica 0 sends to everyone.
    mutating func syncAll() throws {
        for i in replicas.indices.dropFirst() { try exchange(from: i, to: 0) }
        for i in replicas.indices.dropFirst() { try exchange(from: 0, to: i) }
    }

    /// A record that every replica holds after a full sync (created first if nobody has one yet).
    mutating func syncedRecord<R: RandomNumberGenerator>(using rng: inout R) throws -> RecordID {
        try syncAll()
        if let record = replicas[0].records.keys.sorted().randomElement(using: &rng) { return record }
        let record = records.randomElement(using: &rng)!
        try author(on: 0, record: record, kind: .put, operations: [.set(path: "title", value: "New")], using: &rng)
        try syncAll()
        return record
    }

    /// Every replica that holds a record edits it without exchanging first: revisions concurrent with each other.
    mutating func concurrentBurst<R: RandomNumberGenerator>(using rng: inout R) throws {
        let record = records.randomElement(using: &rng)!
        for i in replicas.indices {
            guard let current = replicas[i].records[record] else { continue }
            let operations = try LocalEdit.operations(
                for: Self.randomChanges(current: current, using: &rng), current: current, newEntryID: { "e1" })
            try author(on: i, record: record, kind: .put, operations: operations, using: &rng)
        }
    }

    mutating func compareReplicasWithEqualKnowledge() {
        for i in replicas.indices {
            for j in replicas.indices where i < j && replicas[i].knowledge == replicas[j].knowledge {
                #expect(replicas[i].canonicalBytes == replicas[j].canonicalBytes)
                #expect(replicas[i].records == replicas[j].records)
                equalKnowledgeComparisons += 1
            }
        }
    }

    /// Delivers `revisions` to `replica`, each time picking at random among those it can apply now.
    /// Returns the order used, a random linearisation of the causal order.
    @discardableResult
    static func deliverInRandomCausalOrder<R: RandomNumberGenerator>(
        _ revisions: [Revision], to replica: inout ReplicaState, using rng: inout R
    ) throws -> [Revision] {
        var pending = revisions
        var order: [Revision] = []
        while !pending.isEmpty {
            let ready = pending.indices.filter { replica.knowledge.delivery(of: pending[$0]) == .ready }
            guard let pick = ready.randomElement(using: &rng) else {
                Issue.record("no revision can be delivered, \(pending.count) remain")
                break
            }
            let revision = pending.remove(at: pick)
            try replica.receive(revision)
            order.append(revision)
        }
        return order
    }
}
