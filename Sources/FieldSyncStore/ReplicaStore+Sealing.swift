import FieldSyncCore
import Foundation
import GRDB

extension ReplicaStore {
    /// Records what the central node holds after a sync (its version vector) and when the sync
    /// completed, in one transaction.
    public func rememberCentralKnowledge(_ knowledge: VersionVector, at time: Int64 = Int64(Date().timeIntervalSince1970 * 1000)) throws {
        try write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO last_sync (id, time) VALUES (1, seal(?, 'last_sync.time'))", arguments: [time])
            try db.execute(sql: "DELETE FROM central_knowledge")
            for node in knowledge.nodes {
                try db.execute(
                    sql: "INSERT INTO central_knowledge (node, counter) VALUES (?, ?)", arguments: [node.rawValue, Int64(knowledge[node])])
            }
        }
    }

    /// What the central node held when the last sync completed, or nil before the first one.
    public func centralKnowledge() throws -> VersionVector? {
        try read { db in
            guard try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM last_sync WHERE id = 1)") == true else { return nil }
            var knowledge = VersionVector()
            for row in try Row.fetchAll(db, sql: "SELECT node, counter FROM central_knowledge") {
                guard let node = NodeID(row["node"] as String) else { continue }
                knowledge[node] = UInt64(row["counter"] as Int64)
            }
            return knowledge
        }
    }

    /// When the last sync with the central node completed (milliseconds since 1970), or nil.
    public func lastSync() throws -> Int64? {
        try read { db in try Int64.fetchOne(db, sql: "SELECT unseal(time, 'last_sync.time') FROM last_sync WHERE id = 1") }
    }

    /// How many of this replica's own revisions the central node did not hold at the last sync.
    public func unsyncedRevisions() throws -> Int {
        try read { db in try Self.unsyncedRevisions(db) }
    }

    /// How many revisions this replica wrote (under its current and retired node ids) that the
    /// central node did not hold at the last sync: what a wipe destroys for good. Reads only
    /// columns that stay in clear.
    public static func unsyncedRevisions(at path: String) throws -> Int {
        try readWithoutKey(at: path) { db in try unsyncedRevisions(db) }
    }

    /// Counted from columns that stay in clear: own node ids and counters.
    static func unsyncedRevisions(_ db: Database) throws -> Int {
        let own = try String.fetchAll(db, sql: "SELECT node FROM replica UNION SELECT node FROM retired_node")
        var count = 0
        for node in own {
            let held = try Int64.fetchOne(db, sql: "SELECT counter FROM knowledge WHERE node = ?", arguments: [node]) ?? 0
            let central = try Int64.fetchOne(db, sql: "SELECT counter FROM central_knowledge WHERE node = ?", arguments: [node]) ?? 0
            count += Int(max(0, held - central))
        }
        return count
    }

    /// One read of clear columns of the file at `path`, opened without a key (for `wipe`).
    static func readWithoutKey<T>(at path: String, _ body: (Database) throws -> T) throws -> T {
        let queue: DatabaseQueue
        do {
            queue = try DatabaseQueue(path: path)
        } catch let error as DatabaseError { throw StoreError.from(error, path: path) }
        defer { try? queue.close() }
        do { return try queue.read(body) } catch let error as DatabaseError { throw StoreError.from(error, path: path) }
    }

    /// How many attachments kept at `path` have no receipt from the central node: what `wipe` would
    /// lose. Needs no key (the hash columns are compared, never read).
    public static func unreceiptedAttachments(at path: String) throws -> Int {
        try readWithoutKey(at: path) { db in
            let exists =
                try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'attachment_local')") ?? false
            guard exists else { return 0 }
            return try Int.fetchOne(
                db,
                sql: "SELECT COUNT(*) FROM attachment_local l WHERE NOT EXISTS (SELECT 1 FROM attachment_receipt r WHERE r.sha = l.sha)"
            ) ?? 0
        }
    }

    /// Whether the replica at `path` is sealed (it has a `sealing` row); nil when the file cannot be
    /// read as a replica. Needs no key.
    public static func isSealed(at path: String) -> Bool? {
        guard FileManager.default.fileExists(atPath: path), let queue = try? DatabaseQueue(path: path) else { return nil }
        defer { try? queue.close() }
        return try? queue.read { db in
            try db.tableExists("sealing") ? (try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM sealing)") ?? false) : false
        }
    }

    /// When the replica at `path` was made (a clear column; no key needed), or nil.
    public static func creationTime(at path: String) -> Int64? {
        guard FileManager.default.fileExists(atPath: path), let queue = try? DatabaseQueue(path: path) else { return nil }
        defer { try? queue.close() }
        return try? queue.read { db in try Int64.fetchOne(db, sql: "SELECT created FROM replica WHERE id = 1") }
    }

    /// The plaintext file as the sealed copy saw it, under the copy's exclusive lock: a later
    /// change of its size or modification time means someone wrote to it after the copy.
    public struct PlainSnapshot: Sendable, Equatable {
        public var revisions: Int
        public var size: Int64
        public var modified: Int64

        public init(revisions: Int, size: Int64, modified: Int64) {
            self.revisions = revisions
            self.size = size
            self.modified = modified
        }
    }

    /// Writes a sealed copy of the plaintext replica at `source` to `destination` (which must not
    /// exist), under `key`, in one transaction that holds an exclusive lock on both files; the
    /// source is left as it was. Refuses the central node's store, whose accounts stay plaintext.
    @discardableResult
    public static func writeSealedCopy(of source: String, to destination: String, key: StoreKey) throws -> PlainSnapshot {
        let plain = try open(at: source)
        guard !plain.isEncrypted else { throw StoreError(.invalid, "\(source) is already encrypted") }
        let hasAccounts = try plain.read { db in try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM account)") ?? false }
        try plain.close()
        if hasAccounts {
            throw StoreError(.invalid, "\(source) is a central node's store; it stays plaintext, on an encrypted disk (docs/DEPLOYMENT.md)")
        }
        if FileManager.default.fileExists(atPath: destination) {
            throw StoreError(.alreadyExists, "a file already exists at \(destination); refusing to overwrite it")
        }
        guard FileManager.default.createFile(atPath: destination, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw StoreError(.io, "cannot create \(destination): check that the folder exists and is writable")
        }
        do {
            let sealed = try open(existingAt: destination, access: .single, key: key, requireReplica: false)
            var snapshot = PlainSnapshot(revisions: 0, size: 0, modified: 0)
            do {
                try sealed.writer.writeWithoutTransaction { db in
                    try db.execute(sql: "ATTACH DATABASE ? AS plain", arguments: [source])
                    // Exclusive: no other process writes the plaintext file while it is copied.
                    try db.inTransaction(.exclusive) {
                        try db.execute(
                            sql: "INSERT INTO sealing (id, scheme, probe) VALUES (1, ?, seal(?, ?))",
                            arguments: [Int(ColumnSealer.scheme), ColumnSealer.probeText, ColumnSealer.probePlace])
                        try db.execute(sql: sealedCopySQL)
                        snapshot.revisions = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM plain.revision") ?? 0
                        var info = stat()
                        guard stat(source, &info) == 0 else { throw StoreError(.io, "cannot read \(source)") }
                        snapshot = PlainSnapshot(
                            revisions: snapshot.revisions, size: Int64(info.st_size),
                            modified: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec))
                        return .commit
                    }
                    try db.execute(sql: "DETACH DATABASE plain")
                }
            } catch let error as DatabaseError { throw StoreError.from(error, path: destination) }
            try sealed.close()
            return snapshot
        } catch {
            try? FileManager.default.removeItem(atPath: destination)
            throw error
        }
    }

    /// Every table of a replica, copied from `plain` with each sensitive column sealed as the
    /// store's own statements seal it. (Opening the new file gave it a device key: replaced.)
    private static let sealedCopySQL = """
        INSERT INTO main.replica (id, node, name, server, created, backup, keys_tag, authority, directory_version)
            SELECT id, node, seal(name, 'replica.name'), seal(server, 'replica.server'), created, backup, keys_tag, authority,
                directory_version FROM plain.replica;
        INSERT INTO main.retired_node (node, retired, reason)
            SELECT node, retired, seal(reason, 'retired_node.reason/' || node) FROM plain.retired_node;
        INSERT INTO main.revision (seq, node, counter, record, body, received)
            SELECT seq, node, counter, lookup(record), seal(body, 'revision.body/' || node || '/' || counter),
                seal(received, 'revision.received/' || node || '/' || counter) FROM plain.revision;
        INSERT INTO main.knowledge (node, counter) SELECT node, counter FROM plain.knowledge;
        INSERT INTO main.central_knowledge (node, counter) SELECT node, counter FROM plain.central_knowledge;
        INSERT INTO main.last_sync (id, time) SELECT id, seal(time, 'last_sync.time') FROM plain.last_sync;
        INSERT INTO main.record (id, state, title, deleted, conflicts, updated)
            SELECT lookup(id), seal(state, 'record.state/' || hex(lookup(id))), seal(title, 'record.title/' || hex(lookup(id))), deleted, conflicts,
                seal(updated, 'record.updated/' || hex(lookup(id))) FROM plain.record;
        INSERT OR REPLACE INTO main.device_key (id, private_key, public_key, created)
            SELECT id, seal(private_key, 'device_key.private_key'), seal(public_key, 'device_key.public_key'), created
            FROM plain.device_key;
        INSERT INTO main.enrolment (id, server, token, user, role, enrolled, pin, pinned_cert, ca_cert, server_key)
            SELECT id, seal(server, 'enrolment.server'), seal(token, 'enrolment.token'), seal(user, 'enrolment.user'),
                seal(role, 'enrolment.role'), enrolled, seal(pin, 'enrolment.pin'), seal(pinned_cert, 'enrolment.pinned_cert'),
                seal(ca_cert, 'enrolment.ca_cert'), seal(server_key, 'enrolment.server_key') FROM plain.enrolment;
        INSERT INTO main.node_key (node, public_key, user, role, revoked, certificate)
            SELECT node, seal(public_key, 'node_key.public_key/' || node), seal(user, 'node_key.user/' || node), role, revoked,
                seal(certificate, 'node_key.certificate/' || node) FROM plain.node_key;
        INSERT INTO main.forked_revision (seq, node, counter, record, body, hash, reason, detail, stored)
            SELECT seq, node, counter, lookup(record), seal(body, 'forked_revision.body/' || keyed(hash)), keyed(hash), reason,
                seal(detail, 'forked_revision.detail/' || keyed(hash)), stored FROM plain.forked_revision;
        INSERT INTO main.stale_record (id) SELECT lookup(id) FROM plain.stale_record;
        INSERT INTO main.unconfirmed_node (node, counter) SELECT node, counter FROM plain.unconfirmed_node;
        INSERT INTO main.held_revision (seq, node, counter, record, body, reason, stored)
            SELECT seq, node, counter, lookup(record), seal(body, 'held_revision.body/' || node || '/' || counter),
                seal(reason, 'held_revision.reason/' || node || '/' || counter), stored FROM plain.held_revision;
        INSERT INTO main.node_nonce (node, nonce) SELECT node, nonce FROM plain.node_nonce;
        INSERT INTO main.pending_enrolment (id, server, private_key, node, nonce, replacing, remint_all)
            SELECT id, seal(server, 'pending_enrolment.server'), seal(private_key, 'pending_enrolment.private_key'), node, nonce,
                replacing, remint_all FROM plain.pending_enrolment;
        """
}
