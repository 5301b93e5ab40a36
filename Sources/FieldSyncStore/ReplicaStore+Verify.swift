import FieldSyncCore
import FieldSyncProtocol
import GRDB

/// What `fieldsync verify` found wrong with a store; empty when it is sound.
public struct VerificationReport: Sendable, Equatable {
    public var problems: [String]
    public var revisions: Int
    public var records: Int
    /// Revisions whose signature verified against a known key.
    public var verifiedSignatures: Int
    /// Revisions kept aside as fork evidence: listed, not problems.
    public var setAside: [ForkedRevision] = []

    public var isSound: Bool { problems.isEmpty }
}

extension ReplicaStore {
    /// Checks, in one read transaction: SQLite's integrity; that every revision parses and matches
    /// its index columns; that each node's counters run 1…n without gaps and agree with the stored
    /// version vector; that every `prev` names the stored revision before it (the hash chain); that every causal context is covered; that signatures verify; and that each
    /// materialized record equals a replay of its revisions.
    public func verify() throws -> VerificationReport {
        try read { db in
            var problems: [String] = []
            let integrity = try String.fetchAll(db, sql: "PRAGMA integrity_check")
            if integrity != ["ok"] { problems.append("SQLite integrity check: " + integrity.prefix(5).joined(separator: "; ")) }

            // Keys: those the replica learned, its own, and (on a central node) enrolled devices'.
            var entries = Array(try Self.keyDirectory(db).entries.values)
            for row in try Row.fetchAll(db, sql: "SELECT node, public_key FROM device") {
                if let node = NodeID(row["node"]) { entries.append(KeyEntry(node: node, publicKey: row["public_key"])) }
            }
            let directory = KeyDirectory(entries)

            var counters: [NodeID: [UInt64]] = [:]
            var byRecord: [RecordID: [Revision]] = [:]
            var verified = 0
            var signatures = SignatureChecker()
            var count = 0
            // Within a node, counters rise in log order, so the previous revision's hash is the last seen.
            var heads: [NodeID: (counter: UInt64, hash: String)] = [:]
            let cursor = try Row.fetchCursor(
                db, sql: "SELECT seq, node, counter, reveal(record) AS record, \(Sealed.revisionBody) AS body FROM revision ORDER BY seq")
            while let row = try cursor.next() {
                count += 1
                let seq: Int64 = row["seq"]
                guard let revision = try? Revision(json: JSONValue(parsing: row["body"] as String)) else {
                    problems.append("revision #\(seq) does not parse")
                    continue
                }
                if revision.dot.node.rawValue != (row["node"] as String) || Int64(revision.dot.counter) != (row["counter"] as Int64)
                    || revision.record.rawValue != (row["record"] as String)
                {
                    problems.append("revision #\(seq) (\(revision.dot)) does not match its index columns")
                }
                if revision.signature == nil {
                    problems.append("revision \(revision.dot) is not signed")
                } else if let entry = directory[revision.dot.node] {
                    if signatures.isValid(revision, publicKeyBase64: entry.publicKey) {
                        verified += 1
                    } else {
                        problems.append("revision \(revision.dot): bad signature")
                    }
                } else {
                    problems.append("revision \(revision.dot): no key known for node \(revision.dot.node)")
                }
                let text: String = row["body"]
                if let previous = revision.previous {
                    let head = heads[revision.dot.node]
                    if head?.counter != revision.dot.counter - 1 || head?.hash != previous {
                        problems.append(
                            "revision \(revision.dot): its prev does not name the stored revision \(revision.dot.node):\(revision.dot.counter - 1) (broken hash chain)"
                        )
                    }
                }
                heads[revision.dot.node] = (revision.dot.counter, RevisionChain.hash(ofText: text))
                counters[revision.dot.node, default: []].append(revision.dot.counter)
                byRecord[revision.record, default: []].append(revision)
            }

            let knowledge = try Self.knowledge(db)
            var logged = VersionVector()
            for (node, list) in counters {
                let sorted = list.sorted()
                if sorted != Array(1...UInt64(sorted.count)) {
                    problems.append("node \(node): counters are not 1…\(sorted.count) without gaps")
                }
                logged[node] = sorted.last ?? 0
            }
            if logged != knowledge { problems.append("the stored version vector \(knowledge) differs from the log's \(logged)") }
            for revisions in byRecord.values {
                for revision in revisions where !knowledge.covers(revision.context) {
                    problems.append("revision \(revision.dot): its context \(revision.context) is not covered (causal gap)")
                }
            }

            let stored = try Row.fetchAll(
                db,
                sql:
                    "SELECT reveal(id) AS id, \(Sealed.recordState) AS state, \(Sealed.recordTitle) AS title, deleted, conflicts FROM record"
            )
            let authority = try Self.computedAuthority(db)
            if stored.count != byRecord.count {
                problems.append("\(stored.count) materialized records for \(byRecord.count) records in the log")
            }
            for row in stored {
                guard let id = RecordID(row["id"]) else {
                    problems.append("record id \(row["id"] as String) is not a UUID")
                    continue
                }
                var replay = RecordState(id: id)
                for revision in HistoryStep.canonicalOrder(byRecord[id] ?? []) { replay.apply(revision, authority: authority) }
                if !replay.isStored(as: row["state"] as String) {
                    problems.append(
                        "record \(id): the materialized state differs from a replay of its \(byRecord[id]?.count ?? 0) revisions")
                }
                if (row["title"] as String?) != replay.value(at: "title")?.stringValue || (row["deleted"] as Bool) != replay.isDeleted
                    || (row["conflicts"] as Int) != replay.conflicts.count
                {
                    problems.append("record \(id): the title, deleted or conflict columns are stale")
                }
            }
            return VerificationReport(
                problems: problems, revisions: count, records: stored.count, verifiedSignatures: verified,
                setAside: try Self.forkedRevisions(db))
        }
    }
}
