import FieldSyncCore
import FieldSyncProtocol
import PostgresNIO

/// What `fieldsync verify --database` found.
public struct PostgresVerification: Sendable {
    public var problems: [String] = []
    public var revisions = 0
    public var records = 0
    public var verifiedSignatures = 0
    /// Revisions kept aside as fork evidence: counted, not problems.
    public var setAside = 0
    public var receipts = 0

    public var isSound: Bool { problems.isEmpty }
}

extension PostgresCentralStore {
    /// Checks the database on one snapshot, as `verify` checks an SQLite store: every revision
    /// parses and matches its key columns; signatures verify against the enrolled keys; each node's
    /// counters run 1…n and agree with `knowledge`; every `prev` names the stored revision before it;
    /// every context is covered; each record equals a replay of its revisions; every certificate
    /// and receipt was issued by this node's key.
    public func verify() async throws -> PostgresVerification {
        let serverKey = key.publicKeyBase64
        return try await read { connection in
            var report = PostgresVerification()
            var keys: [NodeID: String] = [:]
            var certificates: [(NodeID, String?)] = []
            for try await (node, publicKey, certificate) in try await connection.query(
                "SELECT node, public_key, certificate FROM device", logger: logger
            ).decode((String, String, String?).self) {
                guard let node = NodeID(node) else {
                    report.problems.append("device \(node): not a node id")
                    continue
                }
                keys[node] = publicKey
                certificates.append((node, certificate))
            }
            for (node, text) in certificates {
                guard let text, let certificate = try? NodeCertificate(json: JSONValue(parsing: text), at: "certificate"),
                    certificate.node == node, certificate.isIssued(by: serverKey)
                else {
                    report.problems.append("device \(node): its certificate is missing or was not issued by this central node's key")
                    continue
                }
            }
            var heads: [NodeID: (counter: UInt64, hash: String)] = [:]
            var byRecord: [RecordID: [Revision]] = [:]
            var logged = VersionVector()
            var signatures = SignatureChecker()
            for try await (seq, node, counter, record, body) in try await connection.query(
                "SELECT seq, node, counter, record, body FROM revision ORDER BY seq", logger: logger
            ).decode((Int64, String, Int64, String, String).self) {
                report.revisions += 1
                guard let revision = try? Revision(json: JSONValue(parsing: body)) else {
                    report.problems.append("revision #\(seq) does not parse")
                    continue
                }
                let dot = revision.dot
                if dot.node.rawValue != node || Int64(dot.counter) != counter || revision.record.rawValue != record {
                    report.problems.append("revision #\(seq) (\(dot)) does not match its key columns")
                }
                if let publicKey = keys[dot.node] {
                    if signatures.isValid(revision, publicKeyBase64: publicKey) {
                        report.verifiedSignatures += 1
                    } else {
                        report.problems.append("revision \(dot): bad signature")
                    }
                } else {
                    report.problems.append("revision \(dot): no key known for node \(dot.node)")
                }
                if dot.counter != logged[dot.node] + 1 {
                    report.problems.append("node \(dot.node): counter \(dot.counter) follows \(logged[dot.node]) (a gap or a repeat)")
                }
                if let previous = revision.previous, heads[dot.node]?.counter != dot.counter - 1 || heads[dot.node]?.hash != previous {
                    report.problems.append(
                        "revision \(dot): its prev does not name the stored revision \(dot.node):\(dot.counter - 1) (broken hash chain)")
                }
                heads[dot.node] = (dot.counter, RevisionChain.hash(ofText: body))
                logged[dot.node] = max(logged[dot.node], dot.counter)
                byRecord[revision.record, default: []].append(revision)
            }
            let knowledge = try await Self.knowledge(connection, logger: logger)
            if knowledge != logged { report.problems.append("the stored version vector \(knowledge) differs from the log's \(logged)") }
            for revisions in byRecord.values {
                for revision in revisions where !knowledge.covers(revision.context) {
                    report.problems.append("revision \(revision.dot): its context \(revision.context) is not covered (causal gap)")
                }
            }
            var admins = Set<NodeID>()
            for try await node in try await connection.query(
                "SELECT d.node FROM device d JOIN account a ON a.name = d.account WHERE a.role = 'admin'", logger: logger
            ).decode(String.self) {
                if let node = NodeID(node) { admins.insert(node) }
            }
            var seen = 0
            for try await (id, state, title, deleted, conflicts) in try await connection.query(
                "SELECT id, state, title, deleted, conflicts FROM record", logger: logger
            ).decode((String, String, String?, Bool, Int).self) {
                seen += 1
                guard let id = RecordID(id) else {
                    report.problems.append("record id \(id) is not a UUID")
                    continue
                }
                var replay = RecordState(id: id)
                for revision in HistoryStep.canonicalOrder(byRecord[id] ?? []) { replay.apply(revision, authority: .admins(admins)) }
                if !replay.isStored(as: state) {
                    report.problems.append(
                        "record \(id): the stored state differs from a replay of its \(byRecord[id]?.count ?? 0) revisions")
                }
                if (title ?? "") != PostgresReceive.titleColumn(replay) || deleted != replay.isDeleted
                    || conflicts != replay.conflicts.count
                {
                    report.problems.append("record \(id): the title, deleted or conflict columns are stale")
                }
            }
            report.records = seen
            if seen != byRecord.count { report.problems.append("\(seen) stored records for \(byRecord.count) records in the log") }
            for try await count in try await connection.query("SELECT COUNT(*)::integer FROM forked_revision", logger: logger).decode(
                Int.self)
            {
                report.setAside = count
            }
            for try await (sha, body) in try await connection.query("SELECT sha, body FROM attachment_receipt", logger: logger).decode(
                (String, String).self)
            {
                report.receipts += 1
                guard let receipt = try? AttachmentReceipt(json: JSONValue(parsing: body)), receipt.sha256 == sha,
                    receipt.isIssued(by: serverKey)
                else {
                    report.problems.append("attachment \(sha): its receipt was not issued by this central node's key")
                    continue
                }
            }
            return report
        }
    }
}
