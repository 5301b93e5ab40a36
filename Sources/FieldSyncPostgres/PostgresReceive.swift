import FieldSyncCore
import FieldSyncProtocol
import Logging
import PostgresNIO

/// Storing one pushed batch on PostgreSQL, inside the write transaction (under the advisory lock):
/// the same rules as the SQLite central node (spec 4.3–4.5, 6.7), with the batch's reads done in
/// a few set-wise statements and its writes as `unnest`ed arrays.
///
/// A central node never holds revisions back (that is a replica's answer to a revoked author), and
/// never re-mints, so it keeps no stale records.
struct PostgresReceive {
    let connection: PostgresConnection
    let logger: Logger
    let now: Int64

    /// The most other contents kept as evidence for one dot, as on SQLite.
    static let maximumEvidencePerDot = 4

    struct NewRevision {
        var revision: Revision
        var text: String
    }

    func receive(
        _ revisions: [Revision], owners: Set<NodeID>, checked: CheckedSignatures, authenticate: (Revision) throws -> Void,
        admit: (Revision, RecordState?) throws -> Void
    ) async throws -> StoreOutcome {
        var knowledge = try await PostgresCentralStore.knowledge(connection, logger: logger)
        let authority = try await self.authority()
        var states = try await loadStates(Set(revisions.map(\.record)))
        var stored = try await storedTexts(of: revisions.map(\.dot).filter { knowledge.covers($0) })
        var outcome = StoreOutcome(accepted: 0, duplicates: 0, newConflicts: 0, knowledge: knowledge)
        var conflictsBefore: [RecordID: Int] = [:]
        var heads: [NodeID: (counter: UInt64, hash: String)] = [:]
        var aside = Set<Dot>()
        var added: [NewRevision] = []
        var touched = Set<RecordID>()

        func text(of revision: Revision) -> String { checked.canonicalText(of: revision) ?? revision.canonicalForms.text }

        func setAside(_ revision: Revision, text: String, because reason: String, contradicts: Bool = true) async throws {
            if contradicts, owners.contains(revision.dot.node) {
                throw ProtocolError.fork(revision, reason: reason)
            }
            try authenticate(revision)
            var kept = 0
            for try await count in try await connection.query(
                """
                SELECT COUNT(*)::integer FROM forked_revision
                WHERE node = \(revision.dot.node.rawValue) AND counter = \(Int64(revision.dot.counter)) AND reason = 'received'
                """, logger: logger
            ).decode(Int.self) {
                kept = count
            }
            if kept < Self.maximumEvidencePerDot {
                try await connection.query(
                    """
                    INSERT INTO forked_revision (node, counter, record, body, hash, reason, detail, stored)
                    VALUES (\(revision.dot.node.rawValue), \(Int64(revision.dot.counter)), \(revision.record.rawValue), \(text),
                        \(RevisionChain.hash(ofText: text)), 'received', \(reason), \(now))
                    ON CONFLICT (hash) DO NOTHING
                    """, logger: logger)
            }
            aside.insert(revision.dot)
            outcome.setAside.append(revision.dot)
        }

        for revision in revisions {
            let dot = revision.dot
            switch knowledge.delivery(of: revision) {
            case .gap(let gap):
                // Work built on a revision set aside joins the evidence instead of blocking the batch.
                var needed: [Dot] = []
                if knowledge[dot.node] < dot.counter - 1 { needed.append(Dot(node: dot.node, counter: knowledge[dot.node] + 1)) }
                for node in revision.context.nodes where knowledge[node] < revision.context[node] {
                    needed.append(Dot(node: node, counter: knowledge[node] + 1))
                }
                var blocked: Dot?
                for dot in needed {
                    let wasSetAside = try await isAside(dot)
                    if aside.contains(dot) || wasSetAside {
                        blocked = dot
                        break
                    }
                }
                guard let blocked else { throw ProtocolError(.causalGap, gap.description) }
                try await setAside(
                    revision, text: text(of: revision), because: "it depends on \(blocked), which was set aside", contradicts: false)
            case .duplicate:
                let text = text(of: revision)
                let held: String?
                if let known = stored[dot] {
                    held = known
                } else {
                    held = try await PostgresCentralStore.revisionText(connection, dot, logger: logger)
                }
                if let held, held != text {
                    try await setAside(revision, text: text, because: "a second content for \(dot), which is already held")
                    continue
                }
                outcome.duplicates += 1
            case .ready:
                let ready = try checked.admissible(revision)
                let text = ready.text
                if let previous = revision.previous {
                    let held: String?
                    if let head = heads[dot.node], head.counter == dot.counter - 1 {
                        held = head.hash
                    } else {
                        held = try await PostgresCentralStore.revisionText(
                            connection, Dot(node: dot.node, counter: dot.counter - 1), logger: logger
                        ).map(RevisionChain.hash(ofText:))
                    }
                    if held != previous {
                        try await setAside(
                            revision, text: text,
                            because: "its prev names another revision \(dot.node):\(dot.counter - 1) than the one held")
                        continue
                    }
                }
                let current = states[revision.record]
                try admit(revision, current)
                if let current, !current.pathsSettled(by: revision, authority: authority).isEmpty { outcome.resolutions += 1 }
                if conflictsBefore[revision.record] == nil { conflictsBefore[revision.record] = current?.conflicts.count ?? 0 }
                var state = current ?? RecordState(id: revision.record)
                guard state.apply(revision, authority: authority) else { continue }
                states[revision.record] = state
                touched.insert(revision.record)
                added.append(NewRevision(revision: revision, text: text))
                stored[dot] = text
                heads[dot.node] = (dot.counter, ready.chainHash)
                knowledge.add(dot)
                outcome.accepted += 1
            }
        }
        try await write(added, states: touched.compactMap { states[$0] })
        for (id, before) in conflictsBefore { outcome.newConflicts += max(0, (states[id]?.conflicts.count ?? 0) - before) }
        outcome.knowledge = knowledge
        return outcome
    }

    // MARK: Reads

    func isAside(_ dot: Dot) async throws -> Bool {
        for try await exists in try await connection.query(
            """
            SELECT EXISTS (SELECT 1 FROM forked_revision WHERE node = \(dot.node.rawValue) AND counter = \(Int64(dot.counter))
                AND reason = 'received')
            """, logger: logger
        ).decode(Bool.self) {
            return exists
        }
        return false
    }

    func loadStates(_ ids: Set<RecordID>) async throws -> [RecordID: RecordState] {
        guard !ids.isEmpty else { return [:] }
        var states: [RecordID: RecordState] = [:]
        for try await (id, text) in try await connection.query(
            "SELECT id, state FROM record WHERE id = ANY(\(ids.map(\.rawValue))::text[])", logger: logger
        ).decode((String, String).self) {
            guard let id = RecordID(id) else { continue }
            states[id] = try RecordState(json: JSONValue(parsing: text))
        }
        return states
    }

    /// The stored texts of dots already held: what a re-pushed batch is compared against.
    func storedTexts(of dots: [Dot]) async throws -> [Dot: String] {
        guard !dots.isEmpty else { return [:] }
        var texts: [Dot: String] = [:]
        for try await (node, counter, body) in try await connection.query(
            """
            SELECT r.node, r.counter, r.body FROM unnest(\(dots.map(\.node.rawValue))::text[], \(dots.map { Int64($0.counter) })::bigint[])
                AS d(node, counter) JOIN revision r ON r.node = d.node AND r.counter = d.counter
            """, logger: logger
        ).decode((String, Int64, String).self) {
            if let node = NodeID(node) { texts[Dot(node: node, counter: UInt64(counter))] = body }
        }
        return texts
    }

    /// Who may end conflicts: the node ids of admin accounts' devices (spec 6.7). When that set
    /// changed since the stored states were computed, the records it can change are replayed
    /// first, as on SQLite, so that every state is a function of the revisions and of who may resolve.
    func authority() async throws -> ResolutionAuthority {
        var admins = Set<NodeID>()
        for try await node in try await connection.query(
            "SELECT d.node FROM device d JOIN account a ON a.name = d.account WHERE a.role = 'admin'", logger: logger
        ).decode(String.self) {
            if let node = NodeID(node) { admins.insert(node) }
        }
        let text = "admins:" + admins.map(\.rawValue).sorted().joined(separator: ",")
        var stored: String?
        for try await value in try await connection.query("SELECT authority FROM central WHERE id = 1", logger: logger).decode(
            String?.self)
        {
            stored = value
        }
        guard stored != text else { return .admins(admins) }
        let authority = ResolutionAuthority.admins(admins)
        let previous = Set(
            (stored?.hasPrefix("admins:") == true ? stored!.dropFirst("admins:".count) : "").split(separator: ",").map(String.init))
        let changed = previous.symmetricDifference(admins.map(\.rawValue))
        var affected: [String] = []
        if stored == nil {
            for try await id in try await connection.query("SELECT id FROM record", logger: logger).decode(String.self) {
                affected.append(id)
            }
        } else if !changed.isEmpty {
            for try await id in try await connection.query(
                "SELECT DISTINCT record FROM revision WHERE node = ANY(\(Array(changed))::text[])", logger: logger
            ).decode(String.self) {
                affected.append(id)
            }
        }
        var replayed: [RecordState] = []
        for id in affected.compactMap(RecordID.init) {
            var revisions: [Revision] = []
            for try await body in try await connection.query(
                "SELECT body FROM revision WHERE record = \(id.rawValue) ORDER BY seq", logger: logger
            ).decode(String.self) {
                revisions.append(try Revision(json: JSONValue(parsing: body)))
            }
            var state = RecordState(id: id)
            for revision in HistoryStep.canonicalOrder(revisions) { state.apply(revision, authority: authority) }
            replayed.append(state)
        }
        try await saveStates(replayed)
        try await connection.query("UPDATE central SET authority = \(text) WHERE id = 1", logger: logger)
        return authority
    }

    // MARK: Writes

    func write(_ added: [NewRevision], states: [RecordState]) async throws {
        guard !added.isEmpty else { return }
        var nodes: [String] = []
        var counters: [Int64] = []
        var records: [String] = []
        var bodies: [String] = []
        for new in added {
            nodes.append(new.revision.dot.node.rawValue)
            counters.append(Int64(new.revision.dot.counter))
            records.append(new.revision.record.rawValue)
            bodies.append(new.text)
        }
        // Log positions follow the batch's (causal) order, after every position already used; the
        // advisory lock makes the positions of concurrent instances' batches follow commit order.
        try await connection.query(
            """
            INSERT INTO revision (seq, node, counter, record, body, received)
            SELECT (SELECT COALESCE(MAX(seq), 0) FROM revision) + t.position, t.node, t.counter, t.record, t.body, \(now)
            FROM unnest(\(nodes)::text[], \(counters)::bigint[], \(records)::text[], \(bodies)::text[]) WITH ORDINALITY
                AS t(node, counter, record, body, position)
            """, logger: logger)
        var heads: [String: Int64] = [:]
        for (node, counter) in zip(nodes, counters) { heads[node] = max(heads[node] ?? 0, counter) }
        try await connection.query(
            """
            INSERT INTO knowledge (node, counter) SELECT * FROM unnest(\(Array(heads.keys))::text[], \(Array(heads.values))::bigint[])
            ON CONFLICT (node) DO UPDATE SET counter = GREATEST(knowledge.counter, excluded.counter)
            """, logger: logger)
        try await saveStates(states)
        var shas: [String] = []
        var manifests: [String] = []
        var contents: [String] = []
        for new in added {
            for operation in new.revision.operations {
                guard case .set(let path, let value) = operation, path.hasPrefix("attachments."), path.hasSuffix(".content"),
                    let content = AttachmentContent(json: value)
                else { continue }
                let sha = String(path.dropFirst("attachments.".count).dropLast(".content".count))
                guard Revision.isHash(sha) else { continue }
                shas.append(sha)
                manifests.append(content.manifest)
                contents.append(content.json.canonicalText)
            }
        }
        if !shas.isEmpty {
            try await connection.query(
                """
                INSERT INTO attachment_reference (sha, manifest, content)
                SELECT * FROM unnest(\(shas)::text[], \(manifests)::text[], \(contents)::text[]) ON CONFLICT DO NOTHING
                """, logger: logger)
        }
    }

    /// The `title` column: PostgreSQL's `text` holds no U+0000, which a title may carry (the state
    /// itself is escaped JSON and keeps it). Empty for none.
    static func titleColumn(_ state: RecordState) -> String {
        (state.value(at: "title")?.stringValue ?? "").replacingOccurrences(of: "\u{0}", with: "")
    }

    func saveStates(_ states: [RecordState]) async throws {
        guard !states.isEmpty else { return }
        let ordered = states.sorted { $0.id < $1.id }
        let texts = ordered.parallelMap { $0.storedText }
        try await connection.query(
            """
            INSERT INTO record (id, state, title, deleted, conflicts, updated)
            SELECT t.id, t.state, NULLIF(t.title, ''), t.deleted, t.conflicts, \(now)
            FROM unnest(\(ordered.map(\.id.rawValue))::text[], \(texts)::text[],
                \(ordered.map { Self.titleColumn($0) })::text[], \(ordered.map(\.isDeleted))::boolean[],
                \(ordered.map { Int32($0.conflicts.count) })::integer[]) AS t(id, state, title, deleted, conflicts)
            ON CONFLICT (id) DO UPDATE SET state = excluded.state, title = excluded.title, deleted = excluded.deleted,
                conflicts = excluded.conflicts, updated = excluded.updated
            """, logger: logger)
    }
}
