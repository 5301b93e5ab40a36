import FieldSyncCore
import FieldSyncProtocol
import GRDB

/// How ``ReplicaStore`` treats a received revision that contradicts the history it holds for the
/// revision's node: a second content for a dot it already holds, or a `prev` that names another
/// previous revision than the one it holds (`Protocol/sync-protocol.md`, 4.5).
public enum ForkHandling: Sendable, Equatable {
    /// Keep every such revision aside as evidence, and go on with the batch.
    case setAside
    /// Refuse the batch with ``ProtocolError/Code/fork`` when such a revision is of one of `owners`
    /// (the pushing account's node ids: a push by the forked replica itself, which must re-mint);
    /// keep others aside (relayed ones).
    case refuseFrom(owners: Set<NodeID>)

    public static func refuseFrom(owner: NodeID) -> ForkHandling { .refuseFrom(owners: [owner]) }
}

extension ReplicaStore {
    /// `checked` carries signatures and canonical texts computed ahead on all cores; the text of a
    /// revision it does not cover is encoded here.
    ///
    /// `authenticate` checks a contradicting revision before it is kept as evidence (its signature):
    /// evidence is never taken from whoever forged it. A throw rejects the batch.
    static func receive(
        _ db: Database, _ revisions: [Revision], checked: CheckedSignatures = .none, forks: ForkHandling = .setAside, now: Int64,
        authenticate: (Revision) throws -> Void = { _ in }, hold: (Revision) throws -> String? = { _ in nil }, admit: Admission
    ) throws -> ReceiveOutcome {
        var cache: [RecordID: RecordState] = [:]
        var outcome = ReceiveOutcome(accepted: 0, duplicates: 0, newConflicts: 0, resolutions: 0, knowledge: try Self.knowledge(db))
        var conflictsBefore: [RecordID: Int] = [:]
        // The hash of the last revision applied per node in this batch: the next one's `prev`.
        var heads: [NodeID: (counter: UInt64, hash: String)] = [:]
        var aside = Set<Dot>()
        var heldHere = Set<Dot>()
        // The newest counter per node whose revision was stored: the knowledge rows to advance.
        var storedHeads: [NodeID: UInt64] = [:]
        let own = try Self.identity(db).node
        // Records whose log is not causally closed after a fork was repaired (usually none).
        let stale = Set(try String.fetchAll(db, sql: "SELECT reveal(id) FROM stale_record").compactMap(RecordID.init))
        var replayAfter = Set<RecordID>()
        let authority = try Self.authority(db, now: now)
        // The rows of the revisions not held yet, sealed on all cores first (an encrypted replica).
        let sealedRows =
            ColumnSealer.of(db).isEncrypted
            ? try Self.sealRows(
                db,
                revisions.filter { !outcome.knowledge.covers($0.dot) }.map {
                    ($0.dot, checked.canonicalText(of: $0) ?? $0.canonicalForms.text)
                },
                now: now) : [:]

        func setAside(_ revision: Revision, text: String, because reason: String, contradicts: Bool = true) throws {
            if contradicts, case .refuseFrom(let owners) = forks, owners.contains(revision.dot.node) {
                throw ProtocolError.fork(revision, reason: reason)
            }
            try authenticate(revision)
            // A few other contents per dot are evidence; more is someone filling the disk.
            let kept =
                try Int.fetchOne(
                    db.cachedStatement(sql: "SELECT COUNT(*) FROM forked_revision WHERE node = ? AND counter = ? AND reason = 'received'"),
                    arguments: [revision.dot.node.rawValue, Int64(revision.dot.counter)]) ?? 0
            if kept < Self.maximumEvidencePerDot {
                try Self.keepAside(db, revision, text: text, reason: "received", detail: reason, now: now)
            }
            aside.insert(revision.dot)
            outcome.setAside += 1
            outcome.setAsideDots.append(revision.dot)
            if contradicts { outcome.contested.append(revision.dot) }
            if contradicts, revision.dot.node == own { outcome.ownNodeForked = true }
        }

        for revision in revisions {
            let dot = revision.dot
            switch outcome.knowledge.delivery(of: revision) {
            case .gap(let gap):
                // A revision that needs one set aside (the rest of a forked branch, or work built on
                // it) cannot be merged either: it joins the evidence instead of blocking the batch.
                var needed: [Dot] = []
                if outcome.knowledge[dot.node] < dot.counter - 1 {
                    needed.append(Dot(node: dot.node, counter: outcome.knowledge[dot.node] + 1))
                }
                for node in revision.context.nodes where outcome.knowledge[node] < revision.context[node] {
                    needed.append(Dot(node: node, counter: outcome.knowledge[node] + 1))
                }
                // One that needs a held revision is held with it, for the same release.
                if let blocked = try needed.first(where: { try heldHere.contains($0) || Self.isHeld(db, $0) }) {
                    // What fails the schema is refused, never held.
                    let ready = try checked.admissible(revision)
                    try Self.hold(db, revision, text: ready.text, reason: "it depends on \(blocked), which is held", now: now)
                    heldHere.insert(dot)
                    outcome.held.append((dot, "it depends on \(blocked), which is held"))
                    continue
                }
                if let blocked = try needed.first(where: { try aside.contains($0) || Self.isAside(db, $0) }) {
                    try setAside(
                        revision, text: checked.canonicalText(of: revision) ?? revision.canonicalForms.text,
                        because: "it depends on \(blocked), which was set aside", contradicts: false)
                    continue
                }
                throw ProtocolError(.causalGap, gap.description)
            case .duplicate:
                let stored = try Self.revisionText(db, dot)
                let text = checked.canonicalText(of: revision) ?? revision.canonicalForms.text
                if let stored, stored != text {
                    try setAside(revision, text: text, because: "a second content for \(dot), which is already held")
                    if dot.node == own {
                        let previous = Dot(node: dot.node, counter: dot.counter - 1)
                        let proven: Bool
                        if dot.counter == 1 {
                            proven = true
                        } else if let named = revision.previous {
                            proven = try named == Self.chainHash(db, previous)
                        } else {
                            proven = false
                        }
                        if proven {
                            outcome.ownForkPoint = min(outcome.ownForkPoint ?? dot.counter, dot.counter)
                        }
                    }
                    continue
                }
                outcome.duplicates += 1
            case .ready:
                // The schema first: what fails it is refused, never held.
                let ready = try checked.admissible(revision)
                let text = ready.text
                if let reason = try hold(revision) {
                    try Self.hold(db, revision, text: text, reason: reason, now: now)
                    heldHere.insert(dot)
                    outcome.held.append((dot, reason))
                    continue
                }
                if let previous = revision.previous {
                    let held: String?
                    if let head = heads[dot.node], head.counter == dot.counter - 1 {
                        held = head.hash
                    } else {
                        held = try Self.chainHash(db, Dot(node: dot.node, counter: dot.counter - 1))
                    }
                    if held != previous {
                        try setAside(
                            revision, text: text,
                            because: "its prev names another revision \(dot.node):\(dot.counter - 1) than the one held")
                        continue
                    }
                }
                let current = try Self.loadState(db, revision.record, cache: &cache)
                try admit(revision, current)
                if let current, !current.pathsSettled(by: revision, authority: authority).isEmpty { outcome.resolutions += 1 }
                if conflictsBefore[revision.record] == nil {
                    conflictsBefore[revision.record] = current?.conflicts.count ?? 0
                }
                if try Self.apply(
                    db, revision, to: current, authority: authority, text: text, sealed: sealedRows[dot], cache: &cache, now: now)
                {
                    storedHeads[dot.node] = dot.counter
                }
                if stale.contains(revision.record) { replayAfter.insert(revision.record) }
                heads[dot.node] = (dot.counter, ready.chainHash)
                outcome.knowledge.add(dot)
                outcome.appliedHeads[dot.node] = dot.counter
                outcome.accepted += 1
            }
        }
        // The knowledge rows once per node, not once per revision (nothing above reads them).
        for (node, counter) in storedHeads { try Self.advanceKnowledge(db, node, to: counter) }
        for id in replayAfter {
            // Logged before revisions it depends on: the incremental state may differ from the
            // canonical one, so replay it; once every context is held it is stale no longer.
            let replay = try Self.replayRecord(db, id, authority: authority)
            cache[id] = replay.state
            if replay.revisions.allSatisfy({ outcome.knowledge.covers($0.context) }) {
                try db.execute(sql: "DELETE FROM stale_record WHERE id = lookup(?)", arguments: [id.rawValue])
            }
        }
        try Self.saveStates(db, cache, now: now)
        for (id, before) in conflictsBefore {
            outcome.newConflicts += max(0, (cache[id]?.conflicts.count ?? 0) - before)
        }
        return outcome
    }

    /// The most other contents kept as evidence for one dot.
    static let maximumEvidencePerDot = 4

    /// The chain hash of the stored revision at `dot`, or nil when none is stored.
    static func chainHash(_ db: Database, _ dot: Dot) throws -> String? {
        try revisionText(db, dot).map(RevisionChain.hash(ofText:))
    }

    static func revisionText(_ db: Database, _ dot: Dot) throws -> String? {
        try String.fetchOne(
            db.cachedStatement(sql: "SELECT \(Sealed.revisionBody) FROM revision WHERE node = ? AND counter = ?"),
            arguments: [dot.node.rawValue, Int64(dot.counter)])
    }

    /// The chain hash of this replica's revision at `dot`, or nil when it holds none.
    public func chainHash(at dot: Dot) throws -> String? {
        try read { db in try Self.chainHash(db, dot) }
    }

    static func isAside(_ db: Database, _ dot: Dot) throws -> Bool {
        try Bool.fetchOne(
            db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM forked_revision WHERE node = ? AND counter = ? AND reason = 'received')"),
            arguments: [dot.node.rawValue, Int64(dot.counter)]) ?? false
    }

    /// Keeps a revision's text as evidence in `forked_revision`, once per distinct text.
    static func keepAside(_ db: Database, _ revision: Revision, text: String, reason: String, detail: String, now: Int64) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO forked_revision (node, counter, record, body, hash, reason, detail, stored)
                VALUES (?1, ?2, lookup(?3), seal(?4, 'forked_revision.body/' || keyed(?5)), keyed(?5), ?6,
                    seal(?7, 'forked_revision.detail/' || keyed(?5)), ?8)
                ON CONFLICT (hash) DO NOTHING
                """
        ).execute(arguments: [
            revision.dot.node.rawValue, Int64(revision.dot.counter), revision.record.rawValue, text, RevisionChain.hash(ofText: text),
            reason, detail, now,
        ])
    }
}
