import FieldSyncCore
import FieldSyncProtocol
import GRDB

extension ReplicaStore {
    /// Re-mints this replica's own branch after a fork (`Protocol/sync-protocol.md`, 13.2): every
    /// revision of its current node id from counter `fork` on is authored again under `fresh`, with
    /// the same record, kind, operations, author, time and note, a context that covers only what
    /// precedes the fork, a new chain and a new signature by this replica's key. The originals are
    /// kept aside as evidence (`forked_revision`, reason `reminted`), the old node id is retired, the
    /// knowledge of it drops to `fork - 1` (so the other branch's versions of the contested dots can
    /// be received), and the touched records are replayed. One transaction; returns how many
    /// revisions were re-minted.
    @discardableResult
    public func remint(
        _ node: NodeID? = nil, from fork: UInt64, replacement fresh: NodeID, capping: [NodeID: UInt64] = [:], reason: String, now: Int64
    ) throws -> Int {
        try write { db in try Self.remint(db, node, from: fork, replacement: fresh, capping: capping, reason: reason, now: now) }
    }

    /// `node`: the current node id (nil) or a retired one of this replica; `fresh` becomes the
    /// current node id either way. `capping`: context entries no re-minted revision may exceed (the
    /// node's history from there on was replaced by the central node's, spec 13, step 8).
    static func remint(
        _ db: Database, _ node: NodeID?, from fork: UInt64, replacement fresh: NodeID, capping: [NodeID: UInt64], reason: String, now: Int64
    ) throws -> Int {
        let identity = try Self.identity(db)
        let old = node ?? identity.node
        guard old == identity.node || identity.retiredNodes.contains(old) else {
            throw StoreError(.invalid, "node \(old) is not one of this replica's node ids")
        }
        let held = try Self.knowledge(db)[old]
        guard fork >= 1, fork <= held else {
            throw StoreError(.invalid, "cannot re-mint \(old) from counter \(fork): this replica holds it up to \(held)")
        }
        let key = try Self.deviceKey(db)
        let rows = try Row.fetchAll(
            db, sql: "SELECT seq, \(Sealed.revisionBody) AS body FROM revision WHERE node = ? AND counter >= ? ORDER BY counter",
            arguments: [old.rawValue, Int64(fork)])
        var previous: String?
        var touched = Set<RecordID>()
        for (index, row) in rows.enumerated() {
            let text: String = row["body"]
            let original = try Revision(json: JSONValue(parsing: text))
            var context = original.context
            let seen = context[old]
            if seen >= fork {
                // What this revision's author had seen of its own branch is now the fresh node's.
                context[old] = fork - 1
                context[fresh] = seen - fork + 1
            }
            for (other, cap) in capping where context[other] > cap { context[other] = cap }
            let counter = UInt64(index + 1)
            let minted = try key.sign(
                Revision(
                    dot: Dot(node: fresh, counter: counter), record: original.record, kind: original.kind,
                    operations: original.operations, context: context, author: original.author, time: original.time,
                    note: original.note, previous: previous))
            let mintedText = minted.canonicalForms.text
            try Self.keepAside(db, original, text: text, reason: "reminted", detail: "re-minted as \(fresh):\(counter)", now: now)
            // Same log position: the log stays in a causal order.
            try db.execute(
                sql: """
                    UPDATE revision SET node = ?1, counter = ?2, body = seal(?3, 'revision.body/' || ?1 || '/' || ?2),
                        received = seal(\(Sealed.revisionReceived), 'revision.received/' || ?1 || '/' || ?2)
                    WHERE seq = ?4
                    """,
                arguments: [fresh.rawValue, Int64(counter), mintedText, row["seq"] as Int64])
            previous = RevisionChain.hash(ofText: mintedText)
            touched.insert(original.record)
        }
        if fork > 1 {
            try db.execute(sql: "UPDATE knowledge SET counter = ? WHERE node = ?", arguments: [Int64(fork - 1), old.rawValue])
        } else {
            try db.execute(sql: "DELETE FROM knowledge WHERE node = ?", arguments: [old.rawValue])
        }
        if !rows.isEmpty {
            try db.execute(sql: "INSERT INTO knowledge (node, counter) VALUES (?, ?)", arguments: [fresh.rawValue, rows.count])
        }
        if old != identity.node {
            try db.execute(
                sql: "INSERT OR IGNORE INTO retired_node (node, retired, reason) VALUES (?1, ?2, seal(?3, 'retired_node.reason/' || ?1))",
                arguments: [old.rawValue, now, reason])
        }
        // `fresh` may already be the current id (a re-enrolment re-mints a retired id's unpushed
        // branch into the id it just enrolled, before anything was written under it).
        if identity.node != fresh { try Self.retireNodeID(db, reason: reason, now: now, replacement: fresh) }
        try db.execute(sql: "UPDATE replica SET backup = NULL WHERE id = 1")
        try db.execute(sql: "DELETE FROM unconfirmed_node WHERE node = ?", arguments: [old.rawValue])
        // Revisions of others made on top of the old branch (brought by a bundle) still name its
        // dots, which now mean the other branch's: their records are replayed whenever it arrives.
        let firstSeq: Int64 = rows.first?["seq"] ?? Int64.max
        let dependents = try Self.dependents(db, of: old, from: fork, after: firstSeq, skipping: fresh)
        try Self.replay(db, touched.union(dependents), stale: dependents, now: now)
        return rows.count
    }

    /// The lowest counter of this replica's current node above `pushed` whose revision's context
    /// names `node` at `counter` or beyond: its own unpushed work built on a history of `node` that
    /// was just replaced. Nil when there is none.
    public func firstOwnRevision(dependingOn node: NodeID, from counter: UInt64, above pushed: UInt64) throws -> UInt64? {
        try read { db in
            let own = try Self.identity(db).node
            for row in try Row.fetchAll(
                db, sql: "SELECT counter, \(Sealed.revisionBody) AS body FROM revision WHERE node = ? AND counter > ? ORDER BY counter",
                arguments: [own.rawValue, Int64(pushed)])
            {
                if try Revision(json: JSONValue(parsing: row["body"] as String)).context[node] >= counter {
                    return UInt64(row["counter"] as Int64)
                }
            }
            return nil
        }
    }

    /// Takes the central node's history of `node` from counter `fork` on (another node's, whose
    /// author forked): the revisions held here under those dots are moved aside as evidence
    /// (reason `replaced`), the knowledge of `node` drops to `fork - 1` so that the server's own
    /// revisions are pulled, and the touched records are replayed. One transaction.
    public func adoptServerHistory(of node: NodeID, from fork: UInt64, now: Int64) throws {
        precondition(fork >= 1)
        try write { db in
            let identity = try Self.identity(db)
            guard node != identity.node, !identity.retiredNodes.contains(node) else {
                throw StoreError(.invalid, "this replica's own history is re-minted, not replaced")
            }
            let rows = try Row.fetchAll(
                db, sql: "SELECT seq, \(Sealed.revisionBody) AS body FROM revision WHERE node = ? AND counter >= ? ORDER BY counter",
                arguments: [node.rawValue, Int64(fork)])
            guard !rows.isEmpty else { return }
            var touched = Set<RecordID>()
            for row in rows {
                let text: String = row["body"]
                let revision = try Revision(json: JSONValue(parsing: text))
                try Self.keepAside(
                    db, revision, text: text, reason: "replaced",
                    detail:
                        "the central node holds another history of \(node) from counter \(fork) (its author forked); the central node's replaces this one",
                    now: now)
                try db.execute(sql: "DELETE FROM revision WHERE seq = ?", arguments: [row["seq"] as Int64])
                touched.insert(revision.record)
            }
            try db.execute(sql: "DELETE FROM unconfirmed_node WHERE node = ?", arguments: [node.rawValue])
            if fork > 1 {
                try db.execute(sql: "UPDATE knowledge SET counter = ? WHERE node = ?", arguments: [Int64(fork - 1), node.rawValue])
            } else {
                try db.execute(sql: "DELETE FROM knowledge WHERE node = ?", arguments: [node.rawValue])
            }
            try db.execute(sql: "DELETE FROM unconfirmed_node WHERE node = ?", arguments: [node.rawValue])
            let dependents = try Self.dependents(db, of: node, from: fork, after: rows.map { $0["seq"] as Int64 }.min()!, skipping: nil)
            try Self.replay(db, touched.union(dependents), stale: dependents, now: now)
        }
    }

    /// Records holding a revision logged after `seq` whose context covers `node` at `counter` or
    /// beyond: work done on top of a branch that was just taken out of the log.
    static func dependents(_ db: Database, of node: NodeID, from counter: UInt64, after seq: Int64, skipping: NodeID?) throws -> Set<
        RecordID
    > {
        var found = Set<RecordID>()
        let cursor = try String.fetchCursor(
            db, sql: "SELECT \(Sealed.revisionBody) FROM revision WHERE seq > ? AND node != ?", arguments: [seq, skipping?.rawValue ?? ""])
        while let body = try cursor.next() {
            let revision = try Revision(json: JSONValue(parsing: body))
            if revision.context[node] >= counter { found.insert(revision.record) }
        }
        return found
    }

    /// Rebuilds records from their logged revisions in the canonical causal order, which gives the
    /// state every replica holding the same revisions has, whatever order they were logged in.
    /// Records in `stale` are replayed again on every receive that touches them, until their log is
    /// causally closed.
    static func replay(_ db: Database, _ ids: Set<RecordID>, stale: Set<RecordID>, now: Int64) throws {
        var states: [RecordID: RecordState] = [:]
        let authority = try Self.authority(db, now: now)
        for id in ids { states[id] = try replayRecord(db, id, authority: authority).state }
        for id in stale { try db.execute(sql: "INSERT OR IGNORE INTO stale_record (id) VALUES (lookup(?))", arguments: [id.rawValue]) }
        try saveStates(db, states, now: now)
    }

    /// The record's state replayed in the canonical order, with the revisions it was replayed from.
    static func replayRecord(_ db: Database, _ id: RecordID, authority: ResolutionAuthority) throws -> (
        state: RecordState, revisions: [Revision]
    ) {
        let revisions = try String.fetchAll(
            db, sql: "SELECT \(Sealed.revisionBody) FROM revision WHERE record = lookup(?) ORDER BY seq", arguments: [id.rawValue]
        )
        .map { try Revision(json: JSONValue(parsing: $0)) }
        var state = RecordState(id: id)
        for revision in HistoryStep.canonicalOrder(revisions) { state.apply(revision, authority: authority) }
        return (state, revisions)
    }

    /// Revisions kept aside: second contents received for dots already held, and this replica's own
    /// originals of re-minted revisions. Oldest first.
    public func forkedRevisions() throws -> [ForkedRevision] {
        try read { db in try Self.forkedRevisions(db) }
    }

    static func forkedRevisions(_ db: Database) throws -> [ForkedRevision] {
        // The hash column is keyed in a sealed replica: the chain hash is taken again from the body.
        try Row.fetchAll(
            db,
            sql: """
                SELECT node, counter, reveal(record) AS record, unseal(body, 'forked_revision.body/' || hash) AS body, reason,
                    unseal(detail, 'forked_revision.detail/' || hash) AS detail, stored
                FROM forked_revision ORDER BY seq
                """
        ).compactMap { row in
            guard let node = NodeID(row["node"]), let record = RecordID(row["record"]) else { return nil }
            return ForkedRevision(
                dot: Dot(node: node, counter: UInt64(row["counter"] as Int64)), record: record,
                hash: RevisionChain.hash(ofText: row["body"] as String), reason: row["reason"], detail: row["detail"], stored: row["stored"]
            )
        }
    }
}

/// A revision kept aside as evidence of a fork: never merged, never pushed, kept forever.
public struct ForkedRevision: Sendable, Equatable {
    public var dot: Dot
    public var record: RecordID
    /// The chain hash of its text.
    public var hash: String
    /// `received` (a second content for a held dot, from a peer or a bundle) or `reminted` (this
    /// replica's own original, authored again under a new node id).
    public var reason: String
    public var detail: String
    public var stored: Int64
}
