import FieldSyncCore
import FieldSyncProtocol
import Foundation
import PostgresNIO

extension PostgresCentralStore {
    /// Whether the database holds nothing a central node wrote but its own fresh identity.
    public func isEmpty() async throws -> Bool {
        try await read { connection in
            try await !Self.exists(
                connection,
                """
                SELECT EXISTS (SELECT 1 FROM revision) OR EXISTS (SELECT 1 FROM account) OR EXISTS (SELECT 1 FROM device)
                    OR EXISTS (SELECT 1 FROM audit) OR EXISTS (SELECT 1 FROM attachment_reference) OR EXISTS (SELECT 1 FROM blob)
                """, logger: logger)
        }
    }

    /// Writes `snapshot` into this empty database in one transaction: the source's identity replaces
    /// the fresh one, revisions keep their text and log order, record states are replayed, and the
    /// audit log keeps its sequence numbers. Throws ``PostgresStoreError`` `.notEmpty` otherwise.
    ///
    /// The store's own `node` and signing key are those it opened with: open it again afterwards.
    public func importSnapshot(_ snapshot: CentralNodeSnapshot) async throws {
        guard try await isEmpty() else {
            throw PostgresStoreError(.notEmpty, "\(url) already holds a central node's data; migrate only into an empty database")
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let revisions = try snapshot.revisions.map { try Revision(json: JSONValue(parsing: $0.text)) }
        try await write { connection in
            try await connection.query(
                """
                UPDATE central SET node = \(snapshot.node.rawValue), private_key = \(ByteBuffer(bytes: snapshot.signingKey.rawRepresentation)),
                    authority = NULL WHERE id = 1
                """, logger: logger)
            for account in snapshot.accounts {
                try await connection.query(
                    """
                    INSERT INTO account (name, role, created, revoked)
                    VALUES (\(account.name), \(account.role.rawValue), \(account.created), \(account.revoked))
                    """, logger: logger)
            }
            for code in snapshot.codes {
                try await connection.query(
                    """
                    INSERT INTO enrolment_code (hash, account, created, expires, used)
                    VALUES (\(code.hash), \(code.account), \(code.created), \(code.expires), \(code.used))
                    """, logger: logger)
            }
            for device in snapshot.devices {
                try await connection.query(
                    """
                    INSERT INTO device (node, account, public_key, token_hash, enrolled, revoked, certificate)
                    VALUES (\(device.node.rawValue), \(device.account), \(device.publicKey), \(device.tokenHash), \(device.enrolled),
                        \(device.revoked), \(device.certificate))
                    """, logger: logger)
            }
            // The log in pages of unnested arrays, its positions kept in order.
            var position: Int64 = 0
            for page in stride(from: 0, to: revisions.count, by: 1000) {
                let slice = page..<min(page + 1000, revisions.count)
                let seqs = slice.map { Int64($0) + 1 }
                position = seqs.last ?? position
                try await connection.query(
                    """
                    INSERT INTO revision (seq, node, counter, record, body, received)
                    SELECT * FROM unnest(\(seqs)::bigint[], \(slice.map { revisions[$0].dot.node.rawValue })::text[],
                        \(slice.map { Int64(revisions[$0].dot.counter) })::bigint[], \(slice.map { revisions[$0].record.rawValue })::text[],
                        \(slice.map { snapshot.revisions[$0].text })::text[], \(slice.map { snapshot.revisions[$0].received })::bigint[])
                    """, logger: logger)
            }
            var knowledge = VersionVector()
            for revision in revisions { knowledge[revision.dot.node] = max(knowledge[revision.dot.node], revision.dot.counter) }
            if !knowledge.isEmpty {
                try await connection.query(
                    """
                    INSERT INTO knowledge (node, counter)
                    SELECT * FROM unnest(\(knowledge.nodes.map(\.rawValue))::text[], \(knowledge.nodes.map { Int64(knowledge[$0]) })::bigint[])
                    """, logger: logger)
            }
            for forked in snapshot.setAside {
                try await connection.query(
                    """
                    INSERT INTO forked_revision (node, counter, record, body, hash, reason, detail, stored)
                    VALUES (\(forked.node.rawValue), \(Int64(forked.counter)), \(forked.record), \(forked.body), \(forked.hash),
                        \(forked.reason), \(forked.detail), \(forked.stored))
                    ON CONFLICT (hash) DO NOTHING
                    """, logger: logger)
            }
            for entry in snapshot.audit {
                try await connection.query(
                    """
                    INSERT INTO audit (seq, time, "user", device, action, detail, address) OVERRIDING SYSTEM VALUE
                    VALUES (\(entry.seq), \(entry.time), \(entry.user), \(entry.device), \(entry.action), \(entry.detail), \(entry.address))
                    """, logger: logger)
            }
            if let last = snapshot.audit.map(\.seq).max() {
                try await connection.query("SELECT setval(pg_get_serial_sequence('audit', 'seq'), \(last))", logger: logger)
            }
            for reference in snapshot.references {
                try await connection.query(
                    """
                    INSERT INTO attachment_reference (sha, manifest, content)
                    VALUES (\(reference.sha256), \(reference.content.manifest), \(reference.content.json.canonicalText)) ON CONFLICT DO NOTHING
                    """, logger: logger)
            }
            for (hash, bytes) in snapshot.manifests {
                try await connection.query(
                    "INSERT INTO attachment_manifest (hash, body) VALUES (\(hash), \(ByteBuffer(bytes: bytes))) ON CONFLICT DO NOTHING",
                    logger: logger)
            }
            for stored in snapshot.receipts {
                try await connection.query(
                    """
                    INSERT INTO attachment_receipt (sha, body, account, size)
                    VALUES (\(stored.receipt.sha256), \(stored.receipt.json.canonicalText), \(stored.account), \(stored.size))
                    """, logger: logger)
            }
            // Record states, replayed from the log with the admins' authority; `authority` stored.
            let receive = PostgresReceive(connection: connection, logger: logger, now: now)
            let authority = try await receive.authority()
            var byRecord: [RecordID: [Revision]] = [:]
            for revision in revisions { byRecord[revision.record, default: []].append(revision) }
            var states: [RecordState] = []
            for (id, list) in byRecord {
                var state = RecordState(id: id)
                for revision in HistoryStep.canonicalOrder(list) { state.apply(revision, authority: authority) }
                states.append(state)
            }
            for page in stride(from: 0, to: states.count, by: 1000) {
                try await receive.saveStates(Array(states[page..<min(page + 1000, states.count)]))
            }
        }
    }
}
