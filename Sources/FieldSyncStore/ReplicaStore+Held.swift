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
    static func hold(_ db: Database, _ revision: Revision, text: String, reason: String, now: Int64) throws {
        try db.cachedStatement(sql: """
            INSERT INTO held_revision (node, counter, record, body, reason, stored) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (node, counter, body) DO UPDATE SET reason = excluded.reason
            """).execute(arguments: [revision.dot.node.rawValue, Int64(revision.dot.counter), revision.record.rawValue, text, reason, now])
    }

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
            try Row.fetchAll(db, sql: "SELECT node, counter, record, body, reason, stored FROM held_revision ORDER BY seq").compactMap { row in
                guard let node = NodeID(row["node"]), let record = RecordID(row["record"]) else { return nil }
                let author = (try? Revision(json: JSONValue(parsing: row["body"] as String)).author) ?? "?"
                return HeldRevision(
                    dot: Dot(node: node, counter: UInt64(row["counter"] as Int64)), record: record, author: author, reason: row["reason"],
                    stored: row["stored"])
            }
        }
    }

    /// Tries every held revision again against what this replica now knows (after a sync learned
    /// the central node's directory), in the order they were held: those it now vouches for are
    /// merged, the rest stay held, and those the log has meanwhile received from the central node
    /// are dropped. One transaction. Returns how many were merged.
    @discardableResult
    public func releaseHeld(now: Int64) throws -> Int {
        try write { db in
            let rows = try Row.fetchAll(db, sql: "SELECT body, reason, stored FROM held_revision ORDER BY seq")
            guard !rows.isEmpty else { return 0 }
            var revisions: [Revision] = []
            for row in rows {
                let text: String = row["body"]
                let revision = try Revision(json: JSONValue(parsing: text))
                if let stored = try Self.revisionText(db, revision.dot), stored == text { continue }
                revisions.append(revision)
            }
            try db.execute(sql: "DELETE FROM held_revision")
            let directory = try Self.keyDirectory(db)
            let outcome = try Self.receive(
                db, CausalSort.sorted(revisions), now: now, authenticate: { try directory.verify($0) },
                hold: { Self.holdReason($0, in: directory, checked: .none) }
            ) { revision, _ in try directory.verify(revision) }
            // A release keeps the time each revision was first held.
            for row in rows {
                try db.execute(sql: "UPDATE held_revision SET stored = ? WHERE body = ?", arguments: [row["stored"] as Int64, row["body"] as String])
            }
            return outcome.accepted
        }
    }
}
