import FieldSyncCore
import FieldSyncProtocol
import Foundation
import GRDB

/// A revision a bundle brought that this replica holds instead of merging, because its central
/// node would refuse it (spec 12.4): neither merged nor pushed, released when the central node
/// vouches for it.
public struct HeldRevision: Sendable, Equatable {
    public var dot: Dot
    public var record: RecordID
    public var author: String
    public var reason: String
    public var stored: Int64
}

extension ReplicaStore {
    /// The most contents held for one dot: a few are evidence of what was offered, more is someone
    /// filling the disk.
    static let maximumHeldPerDot = 4

    static func hold(_ db: Database, _ revision: Revision, text: String, reason: String, now: Int64) throws {
        let kept =
            try Int.fetchOne(
                db.cachedStatement(sql: "SELECT COUNT(*) FROM held_revision WHERE node = ? AND counter = ?"),
                arguments: [revision.dot.node.rawValue, Int64(revision.dot.counter)]) ?? 0
        // The same content held again only gets the new reason. Compared here, not by a unique
        // index: a sealed body is a fresh ciphertext each time.
        for row in try Row.fetchAll(
            db.cachedStatement(sql: "SELECT seq, \(heldBody) AS body FROM held_revision WHERE node = ? AND counter = ?"),
            arguments: [revision.dot.node.rawValue, Int64(revision.dot.counter)])
        where (row["body"] as String) == text {
            try db.execute(
                sql: "UPDATE held_revision SET reason = \(heldReasonValue) WHERE seq = ?2", arguments: [reason, row["seq"] as Int64])
            return
        }
        guard kept < maximumHeldPerDot else { return }
        try db.cachedStatement(
            sql: """
                INSERT INTO held_revision (node, counter, record, body, reason, stored)
                VALUES (?1, ?2, lookup(?3), seal(?4, 'held_revision.body/' || ?1 || '/' || ?2),
                    seal(?5, 'held_revision.reason/' || ?1 || '/' || ?2), ?6)
                """
        ).execute(arguments: [revision.dot.node.rawValue, Int64(revision.dot.counter), revision.record.rawValue, text, reason, now])
    }

    static let heldBody = "unseal(body, 'held_revision.body/' || node || '/' || counter)"
    static let heldReason = "unseal(reason, 'held_revision.reason/' || node || '/' || counter)"
    /// `?1`, sealed as the reason of the row being updated.
    static let heldReasonValue = "seal(?1, 'held_revision.reason/' || node || '/' || counter)"

    static func isHeld(_ db: Database, _ dot: Dot) throws -> Bool {
        try Bool.fetchOne(
            db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM held_revision WHERE node = ? AND counter = ?)"),
            arguments: [dot.node.rawValue, Int64(dot.counter)]) ?? false
    }

    /// Why the central node would refuse `revision`, judged by what this replica knows of it: its
    /// node is not vouched for, the signature is not by the vouched key, or the node is revoked.
    /// Nil when it would take it. Only for a replica that pinned its central node's key.
    static func holdReason(_ revision: Revision, in directory: KeyDirectory, checked: CheckedSignatures) -> String? {
        guard let serverKey = directory.serverKey else { return nil }
        let node = revision.dot.node
        guard let entry = directory[node] else { return "node \(node) is not vouched for by your central node" }
        guard (try? directory.verify(revision, checked: checked)) != nil else {
            return "it is not signed by the key your central node vouches for as node \(node)"
        }
        if entry.revoked != nil { return "node \(node) was revoked by your central node" }
        guard entry.isCertified(by: serverKey) || entry.certificate == nil && entry.user != nil else {
            return "node \(node) is not vouched for by your central node"
        }
        return nil
    }

    public func heldRevisionCount() throws -> Int {
        try read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM held_revision") ?? 0 }
    }

    /// Learns the central node's directory, with the entity tag it came with, in one transaction.
    public func learnDirectory(_ directory: KeyDirectory, tag: String?) throws {
        try write { db in
            try Self.rememberKeys(db, Array(directory.entries.values), from: .centralNode(serverKey: directory.serverKey))
            if let tag { try db.execute(sql: "UPDATE replica SET keys_tag = ? WHERE id = 1", arguments: [tag]) }
            _ = try Self.authority(db, now: Int64(Date().timeIntervalSince1970 * 1000))
        }
    }

    /// Held revisions, oldest first.
    public func heldRevisions() throws -> [HeldRevision] {
        try read { db in
            try Row.fetchAll(
                db,
                sql:
                    "SELECT node, counter, reveal(record) AS record, \(Self.heldBody) AS body, \(Self.heldReason) AS reason, stored FROM held_revision ORDER BY seq"
            ).compactMap { row in
                guard let node = NodeID(row["node"]), let record = RecordID(row["record"]) else { return nil }
                let author = (try? Revision(json: JSONValue(parsing: row["body"] as String)).author) ?? "?"
                return HeldRevision(
                    dot: Dot(node: node, counter: UInt64(row["counter"] as Int64)), record: record, author: author, reason: row["reason"],
                    stored: row["stored"])
            }
        }
    }

    /// Tries the held revisions again against what this replica now knows (after a sync learned the
    /// central node's directory), in causal order: those it now vouches for are merged, the rest
    /// stay held, and those the log has meanwhile received from the central node are dropped. One
    /// transaction; each revision is tried in a savepoint of its own, so one that cannot be merged
    /// (it still needs a held one, or it fails a check) stays held and never fails the sync.
    /// Returns how many were merged.
    @discardableResult
    public func releaseHeld(now: Int64) throws -> Int {
        try write { db in
            let rows = try Row.fetchAll(
                db, sql: "SELECT seq, \(Self.heldBody) AS body, \(Self.heldReason) AS reason FROM held_revision ORDER BY seq")
            guard !rows.isEmpty else { return 0 }
            let directory = try Self.keyDirectory(db)
            var candidates: [(seq: Int64, revision: Revision)] = []
            for row in rows {
                let text: String = row["body"]
                let seq: Int64 = row["seq"]
                let revision = try Revision(json: JSONValue(parsing: text))
                if let stored = try Self.revisionText(db, revision.dot) {
                    // Received from the central node meanwhile: no longer held. Another content
                    // under a dot the log holds stays held, as it was (a forgery, or a fork's).
                    if stored == text { try db.execute(sql: "DELETE FROM held_revision WHERE seq = ?", arguments: [seq]) }
                    continue
                }
                // Cheap first: only a node the central node now vouches for can be released. What
                // still cannot says why as of now (a key learned since, a revocation).
                if let reason = Self.holdReason(revision, in: directory, checked: .none) {
                    if reason != (row["reason"] as String), !(row["reason"] as String).hasPrefix("it depends on") {
                        try db.execute(
                            sql: "UPDATE held_revision SET reason = \(Self.heldReasonValue) WHERE seq = ?2", arguments: [reason, seq])
                    }
                    continue
                }
                candidates.append((seq, revision))
            }
            // Two contents held for one dot (a clone's bundles): the first held is tried; the other
            // stays held, and is then another content under a dot the log holds.
            var bySeq: [Dot: Int64] = [:]
            var distinct: [Revision] = []
            for candidate in candidates where bySeq[candidate.revision.dot] == nil {
                bySeq[candidate.revision.dot] = candidate.seq
                distinct.append(candidate.revision)
            }
            var released = 0
            for revision in CausalSort.sorted(distinct) {
                guard let seq = bySeq[revision.dot] else { continue }
                var merged = false
                try db.inSavepoint {
                    do {
                        let outcome = try Self.receive(
                            db, [revision], now: now, authenticate: { try directory.verify($0) },
                            hold: { Self.holdReason($0, in: directory, checked: .none) }
                        ) { revision, _ in try directory.verify(revision) }
                        merged = outcome.accepted == 1
                        return merged ? .commit : .rollback
                    } catch is ProtocolError {
                        return .rollback
                    }
                }
                if merged {
                    try db.execute(sql: "DELETE FROM held_revision WHERE seq = ?", arguments: [seq])
                    // It came by bundle: the central node has not been seen to hold it yet, so
                    // the next syncs compare its history and judge it as any bundled revision.
                    try db.execute(
                        sql: """
                            INSERT INTO unconfirmed_node (node, counter) VALUES (?, ?)
                            ON CONFLICT (node) DO UPDATE SET counter = MAX(counter, excluded.counter)
                            """, arguments: [revision.dot.node.rawValue, Int64(revision.dot.counter)])
                    released += 1
                }
            }
            return released
        }
    }
}

/// What ``ReplicaStore/holdBack(_:now:)`` took out of the log.
public struct HoldBack: Sendable, Equatable {
    /// How many revisions moved from the log to the held ones.
    public var held = 0
    /// Per node, the lowest counter held back: no re-minted context may cover it.
    public var from: [NodeID: UInt64] = [:]
}

extension ReplicaStore {
    /// Takes out of the log, into the held revisions, each node's revisions from the given counter
    /// on, with the reason given, and every other node's revision built on them (spec 13, step 4):
    /// what the central node would refuse, which a bundle had brought before this replica could
    /// know (a device revoked since, a node the central node does not know, a key it does not
    /// vouch for). The touched records are replayed; the knowledge of each node drops below what
    /// was taken. This replica's own revisions are never taken: the caller re-mints those built on
    /// what was (``ownRevisionsBuiltOnMissing(above:)`` finds them). One transaction.
    public func holdBack(_ starts: [NodeID: (counter: UInt64, reason: String)], now: Int64) throws -> HoldBack {
        try write { db in
            let identity = try Self.identity(db)
            let own = Set([identity.node] + identity.retiredNodes)
            var result = HoldBack()
            var reasons: [NodeID: String] = [:]
            for (node, start) in starts where !own.contains(node) && start.counter >= 1 {
                result.from[node] = start.counter
                reasons[node] = start.reason
            }
            guard !result.from.isEmpty else { return result }
            let firstSeq = try result.from.compactMap { node, counter in
                try Int64.fetchOne(
                    db, sql: "SELECT MIN(seq) FROM revision WHERE node = ? AND counter >= ?", arguments: [node.rawValue, Int64(counter)])
            }.min()
            guard let firstSeq else { return result }
            var touched = Set<RecordID>()
            var ownRecords = Set<RecordID>()
            // The log is in a causal order: one pass finds every revision built on what is taken.
            for row in try Row.fetchAll(
                db, sql: "SELECT seq, \(Sealed.revisionBody) AS body FROM revision WHERE seq >= ? ORDER BY seq", arguments: [firstSeq])
            {
                let text: String = row["body"]
                let revision = try Revision(json: JSONValue(parsing: text))
                let node = revision.dot.node
                let dependsOn = result.from.first { other, counter in revision.context[other] >= counter }
                if let start = result.from[node], revision.dot.counter >= start {
                    // Taken with its node's history from there.
                } else if let (other, counter) = dependsOn {
                    if own.contains(node) {
                        ownRecords.insert(revision.record)
                        continue
                    }
                    result.from[node] = revision.dot.counter
                    reasons[node] = "it depends on \(other):\(counter), which is held"
                } else {
                    continue
                }
                try Self.hold(db, revision, text: text, reason: reasons[node] ?? "held", now: now)
                try db.execute(sql: "DELETE FROM revision WHERE seq = ?", arguments: [row["seq"] as Int64])
                touched.insert(revision.record)
                result.held += 1
            }
            for (node, counter) in result.from {
                if counter > 1 {
                    try db.execute(
                        sql: "UPDATE knowledge SET counter = MIN(counter, ?) WHERE node = ?",
                        arguments: [Int64(counter - 1), node.rawValue])
                } else {
                    try db.execute(sql: "DELETE FROM knowledge WHERE node = ?", arguments: [node.rawValue])
                }
                // What stays of the node's bundled history is still to be confirmed.
                try db.execute(
                    sql: "UPDATE unconfirmed_node SET counter = MIN(counter, ?) WHERE node = ?",
                    arguments: [Int64(counter - 1), node.rawValue])
                try db.execute(sql: "DELETE FROM unconfirmed_node WHERE node = ? AND counter < 1", arguments: [node.rawValue])
            }
            try Self.replay(db, touched.union(ownRecords), stale: ownRecords, now: now)
            return result
        }
    }

    /// For each node whose revisions came by bundle (not yet confirmed on the central node), the
    /// first of its revisions above `serverKnowledge` that the central node would refuse, judged
    /// by the directory this replica knows, with the reason.
    public func refusedBundledRevisions(above serverKnowledge: VersionVector) throws -> [NodeID: (counter: UInt64, reason: String)] {
        try read { db in
            let directory = try Self.keyDirectory(db)
            guard directory.serverKey != nil else { return [:] }
            let own = try Self.identity(db)
            var found: [NodeID: (counter: UInt64, reason: String)] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT node FROM unconfirmed_node") {
                guard let node = NodeID(row["node"]), node != own.node, !own.retiredNodes.contains(node) else { continue }
                let bodies = try String.fetchAll(
                    db, sql: "SELECT \(Sealed.revisionBody) FROM revision WHERE node = ? AND counter > ? ORDER BY counter",
                    arguments: [node.rawValue, Int64(serverKnowledge[node])])
                for body in bodies {
                    let revision = try Revision(json: JSONValue(parsing: body))
                    if let reason = Self.holdReason(revision, in: directory, checked: .none) {
                        found[node] = (revision.dot.counter, reason)
                        break
                    }
                }
            }
            return found
        }
    }
}

extension ReplicaStore {
    /// This replica's own node ids whose unpushed revisions (above `serverKnowledge`) name in their
    /// context revisions the log no longer holds (they were held back, or replaced): for each, the
    /// first such counter, and the caps that keep a re-minted context within what the log holds.
    /// Such revisions would be refused as a causal gap; re-minted from there, they are not.
    public func ownRevisionsBuiltOnMissing(above serverKnowledge: VersionVector) throws -> [(
        node: NodeID, from: UInt64, caps: [NodeID: UInt64]
    )] {
        try read { db in
            let identity = try Self.identity(db)
            let local = try Self.knowledge(db)
            var found: [(node: NodeID, from: UInt64, caps: [NodeID: UInt64])] = []
            for node in [identity.node] + identity.retiredNodes where local[node] > serverKnowledge[node] {
                var first: UInt64?
                var caps: [NodeID: UInt64] = [:]
                let rows = try Row.fetchAll(
                    db, sql: "SELECT counter, \(Sealed.revisionBody) AS body FROM revision WHERE node = ? AND counter > ? ORDER BY counter",
                    arguments: [node.rawValue, Int64(serverKnowledge[node])])
                // Only each revision's context is needed, read on all cores: a first push reads the
                // whole log of this node here.
                let contexts = rows.map { $0["body"] as String }.parallelMap { body in
                    Result { () throws -> VersionVector in
                        guard let context = try JSONValue(parsing: body)["context"] else {
                            throw StoreError(.invalid, "a stored revision has no context")
                        }
                        return try VersionVector(json: context, at: "context")
                    }
                }
                for (row, context) in zip(rows, contexts) {
                    let context = try context.get()
                    for other in context.nodes where other != node && context[other] > local[other] {
                        first = first ?? UInt64(row["counter"] as Int64)
                        caps[other] = local[other]
                    }
                }
                if let first { found.append((node, first, caps)) }
            }
            return found
        }
    }
}
