import FieldSyncCore
import FieldSyncProtocol
import Foundation
import GRDB

/// A replica in one SQLite file: the revision log, the version vector and the materialized records.
///
/// Every method that writes runs in exactly one transaction and either completes or leaves the file
/// unchanged. The `Database` never escapes the closures below.
public final class ReplicaStore: Sendable {
    let writer: any DatabaseWriter
    public let path: String
    /// Whether the file's sensitive columns are sealed under a ``StoreKey`` (an encrypted replica).
    public let isEncrypted: Bool

    /// The replica's attachment chunks, in the folder beside its file (sealed when it is encrypted).
    public let blobs: ReplicaBlobStore

    private init(writer: any DatabaseWriter, path: String, isEncrypted: Bool, key: StoreKey?) {
        self.writer = writer
        self.path = path
        self.isEncrypted = isEncrypted
        blobs = ReplicaBlobStore(root: path + ".blobs", key: key)
    }

    /// How the file is opened: a `DatabaseQueue` for one CLI process, a `DatabasePool` for the server.
    public enum Access: Sendable { case single, pool }

    /// Creates a new replica file; refuses to touch an existing one.
    /// `node`: nil (the default) takes a node id bound to the new device key (spec 2.1); tests may
    /// name one. `key`: seal the replica under this data key (an encrypted replica); nil makes a
    /// plaintext one.
    public static func create(
        at path: String, name: String, node: NodeID? = nil, now: Int64, access: Access = .single, key: StoreKey? = nil
    ) throws -> ReplicaStore {
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.unicodeScalars.count <= Revision.maximumAuthorLength else {
            throw StoreError(.invalid, "the name must be 1 to \(Revision.maximumAuthorLength) characters")
        }
        if FileManager.default.fileExists(atPath: path) {
            throw StoreError(.alreadyExists, "a file already exists at \(path); refusing to overwrite it")
        }
        // URL, not NSString: corelibs Foundation traps on deletingLastPathComponent of a one-letter name.
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        if !FileManager.default.fileExists(atPath: directory) {
            try? FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        // Created 0600 before SQLite opens it: the replica holds evidence (and, later, a private key).
        guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw StoreError(.io, "cannot create \(path): check that the folder exists and is writable")
        }
        do {
            let store = try open(existingAt: path, access: access, key: key, requireReplica: false)
            try store.writer.write { db in
                if key != nil {
                    try db.execute(
                        sql: "INSERT INTO sealing (id, scheme, probe) VALUES (1, ?, seal(?, ?))",
                        arguments: [Int(ColumnSealer.scheme), ColumnSealer.probeText, ColumnSealer.probePlace])
                }
                let deviceKey = DeviceKey.generate()
                let bound = NodeBinding.fresh(publicKey: deviceKey.publicKeyBase64)
                try db.execute(
                    sql: "INSERT INTO replica (id, node, name, server, created) VALUES (1, ?, seal(?, 'replica.name'), NULL, ?)",
                    arguments: [(node ?? bound.node).rawValue, trimmed, now])
                if node == nil {
                    try db.execute(
                        sql: "INSERT INTO node_nonce (node, nonce) VALUES (?, ?)", arguments: [bound.node.rawValue, bound.nonce])
                }
                try Self.storeDeviceKey(db, deviceKey, now: now)
            }
            return store
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
    }

    /// Opens an existing replica, migrating an older schema forward. An encrypted replica needs
    /// its data key; a plaintext one refuses a key (so that a replica is never half sealed).
    public static func open(at path: String, access: Access = .single, key: StoreKey? = nil) throws -> ReplicaStore {
        guard FileManager.default.fileExists(atPath: path) else {
            throw StoreError(.noReplica, "no replica at \(path): run `fieldsync init --name NAME` first, or pass --store")
        }
        return try open(existingAt: path, access: access, key: key, requireReplica: true)
    }

    /// The page size of a new store file, in bytes.
    static let pageSize = 8192

    static func open(
        existingAt path: String, access: Access, key: StoreKey?, requireReplica: Bool
    ) throws -> ReplicaStore {
        var config = Configuration()
        config.busyMode = .timeout(10)
        config.foreignKeysEnabled = true
        let sealer = ColumnSealer(key: key)
        config.prepareDatabase { db in
            sealer.register(in: db)
            // No plaintext in temporary files, and freed pages zeroed (spec: docs/SECURITY.md).
            try db.execute(sql: "PRAGMA secure_delete = ON; PRAGMA temp_store = MEMORY")
            // 8 KiB pages for a new file (an existing one keeps its size): a record state of an
            // incident with a long narrative is 2–3 KB, one to a 4 KiB page with a third of it
            // empty, three to an 8 KiB page.
            try db.execute(sql: "PRAGMA page_size = \(Self.pageSize)")
            // Record tokens are random, so an encrypted replica inserts into its id indexes in
            // random order: a larger page cache (64 MiB at most, used only as the file grows)
            // keeps those pages in memory.
            if sealer.isEncrypted { try db.execute(sql: "PRAGMA cache_size = -65536") }
        }
        let writer: any DatabaseWriter
        do {
            switch access {
            case .single: writer = try DatabaseQueue(path: path, configuration: config)
            case .pool: writer = try DatabasePool(path: path, configuration: config)
            }
            let migrator = StoreSchema.migrator
            let superseded = try writer.read { db in try migrator.hasBeenSuperseded(db) }
            if superseded {
                throw StoreError(.newerSchema, "\(path) was written by a newer version of fieldsync; upgrade fieldsync to open it")
            }
            try migrator.migrate(writer)
            try checkSealing(writer, key: key, path: path, created: !requireReplica)
            if requireReplica {
                let hasReplica = try writer.read { db in try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM replica)") ?? false }
                guard hasReplica else {
                    throw StoreError(.notAStore, "\(path) is not a FieldSync replica (no identity); run `fieldsync init`")
                }
            }
            // Every replica signs what it writes; one made before signing existed gets its key now.
            try writer.write { db in
                // Record states computed under another authority, or by an older version, are replayed.
                if requireReplica { _ = try Self.authority(db, now: Int64(Date().timeIntervalSince1970 * 1000)) }
                if try Row.fetchOne(db, sql: "SELECT 1 FROM device_key") == nil {
                    try Self.storeDeviceKey(db, DeviceKey.generate(), now: Int64(Date().timeIntervalSince1970 * 1000))
                }
            }
        } catch let error as StoreError {
            throw error
        } catch let error as DatabaseError {
            throw StoreError.from(error, path: path)
        }
        return ReplicaStore(writer: writer, path: path, isEncrypted: sealer.isEncrypted, key: key)
    }

    /// Refuses a key for a plaintext replica, no key for an encrypted one, and a key that does not
    /// open the probe, before anything else is read.
    private static func checkSealing(_ writer: any DatabaseWriter, key: StoreKey?, path: String, created: Bool) throws {
        let sealed = try writer.read { db in try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM sealing)") ?? false }
        switch (sealed, key) {
        case (false, nil): return
        case (false, _?):
            if created { return }
            throw StoreError(.invalid, "\(path) is a plaintext replica, not an encrypted one; `fieldsync encrypt` converts it")
        case (true, nil):
            throw StoreError(
                .encrypted, "\(path) is an encrypted replica: give its passphrase (a terminal, --passphrase-file) or run `fieldsync unlock`"
            )
        case (true, _?):
            let opened = try? writer.read { db in
                try String.fetchOne(db, sql: "SELECT unseal(probe, ?) FROM sealing WHERE id = 1", arguments: [ColumnSealer.probePlace])
            }
            guard opened == ColumnSealer.probeText else {
                throw StoreError(.wrongKey, "the key does not open \(path): it belongs to another replica, or the file was altered")
            }
        }
    }

    // MARK: Identity

    public func identity() throws -> ReplicaIdentity {
        try read { db in try Self.identity(db) }
    }

    static func identity(_ db: Database) throws -> ReplicaIdentity {
        guard
            let row = try Row.fetchOne(
                db,
                sql:
                    "SELECT node, unseal(name, 'replica.name') AS name, unseal(server, 'replica.server') AS server FROM replica WHERE id = 1"
            ),
            let node = NodeID(row["node"])
        else { throw StoreError(.notAStore, "the replica has no identity") }
        let retired = try String.fetchAll(db, sql: "SELECT node FROM retired_node ORDER BY retired").compactMap(NodeID.init)
        return ReplicaIdentity(node: node, name: row["name"], server: row["server"], retiredNodes: retired)
    }

    public func setServer(_ url: String?) throws {
        try write { db in try db.execute(sql: "UPDATE replica SET server = seal(?, 'replica.server') WHERE id = 1", arguments: [url]) }
    }

    /// Takes a fresh node id, retiring the current one, so that no dot is ever reused
    /// (for a replica restored from a backup). Returns the new id.
    @discardableResult
    public func retireNodeID(reason: String, now: Int64, replacement: NodeID? = nil) throws -> NodeID {
        try write { db in
            let fresh = try replacement ?? Self.newNodeID(db)
            try Self.retireNodeID(db, reason: reason, now: now, replacement: fresh)
            // A backup that retires its node id by syncing is no longer an untouched backup.
            try db.execute(sql: "UPDATE replica SET backup = NULL WHERE id = 1")
            return fresh
        }
    }

    /// A new node id bound to this replica's device key, its nonce recorded for registration.
    public func newNodeID() throws -> NodeID {
        try write { db in try Self.newNodeID(db) }
    }

    static func newNodeID(_ db: Database) throws -> NodeID {
        let bound = NodeBinding.fresh(publicKey: try deviceKey(db).publicKeyBase64)
        try db.execute(sql: "INSERT INTO node_nonce (node, nonce) VALUES (?, ?)", arguments: [bound.node.rawValue, bound.nonce])
        return bound.node
    }

    /// The nonce that binds `node` to this replica's key, when it is one of its bound ids.
    public func nodeNonce(_ node: NodeID) throws -> String? {
        try read { db in try String.fetchOne(db, sql: "SELECT nonce FROM node_nonce WHERE node = ?", arguments: [node.rawValue]) }
    }

    static func retireNodeID(_ db: Database, reason: String, now: Int64, replacement fresh: NodeID) throws {
        let old = try Self.identity(db).node
        try db.execute(
            sql: "INSERT OR IGNORE INTO retired_node (node, retired, reason) VALUES (?1, ?2, seal(?3, 'retired_node.reason/' || ?1))",
            arguments: [old.rawValue, now, reason])
        try db.execute(sql: "UPDATE replica SET node = ? WHERE id = 1", arguments: [fresh.rawValue])
    }

    // MARK: Knowledge and revisions

    public func knowledge() throws -> VersionVector {
        try read { db in try Self.knowledge(db) }
    }

    static func knowledge(_ db: Database) throws -> VersionVector {
        var vector = VersionVector()
        for row in try Row.fetchAll(db, sql: "SELECT node, counter FROM knowledge") {
            if let node = NodeID(row["node"]) { vector[node] = UInt64(row["counter"] as Int64) }
        }
        return vector
    }

    /// What a local change writes, decided by a builder that sees the record's current state.
    public typealias LocalChange = (kind: Revision.Kind, operations: [FieldOperation], note: String?)

    /// Records a revision authored here. `build` sees the record's current state (nil for a new
    /// record) and returns what to write; the whole step is one transaction.
    public func commitLocal(record id: RecordID, now: Int64, build: (RecordState?) throws -> LocalChange) throws -> Revision {
        try commitLocal(records: [id], now: now) { _, state in try build(state) }[0]
    }

    /// Records one revision per record id, all in one transaction: either every one is stored or none.
    public func commitLocal(records ids: [RecordID], now: Int64, build: (Int, RecordState?) throws -> LocalChange) throws -> [Revision] {
        try write { db in try Self.commitLocal(db, records: ids, now: now, build: build) }
    }

    static func commitLocal(_ db: Database, records ids: [RecordID], now: Int64, build: (Int, RecordState?) throws -> LocalChange) throws
        -> [Revision]
    {
        do {
            try Self.leaveBackupState(db, now: now)
            let identity = try Self.identity(db)
            let key = try Self.deviceKey(db)
            var counter = try Self.knowledge(db)[identity.node]
            // Each revision names its predecessor's hash (spec 4.5): one hash then stands for the
            // node's whole history, which is how a restored or cloned replica's fork is seen.
            var previous = counter > 0 ? try Self.chainHash(db, Dot(node: identity.node, counter: counter)) : nil
            var cache: [RecordID: RecordState] = [:]
            var revisions: [Revision] = []
            let authority = try Self.authority(db, now: now)
            for (index, id) in ids.enumerated() {
                let current = try Self.loadState(db, id, cache: &cache)
                let change = try build(index, current)
                counter += 1
                let revision = try key.sign(
                    Revision(
                        dot: Dot(node: identity.node, counter: counter), record: id, kind: change.kind,
                        operations: change.operations, context: current?.version ?? VersionVector(), author: identity.name,
                        time: now, note: change.note, previous: previous))
                let text = revision.canonicalForms.text
                _ = try Self.apply(db, revision, to: current, authority: authority, text: text, cache: &cache, now: now)
                previous = RevisionChain.hash(ofText: text)
                revisions.append(revision)
            }
            if !revisions.isEmpty { try Self.advanceKnowledge(db, identity.node, to: counter) }
            try Self.saveStates(db, cache, now: now)
            return revisions
        }
    }

    /// Applies revisions received from a peer, in the order given, all or nothing.
    /// Throws ``ProtocolError`` for a causal gap, a duplicate dot with different content, or an invalid field.
    /// Checks a new revision (never a duplicate) against the record it changes before it is stored;
    /// throwing rejects the whole batch. Used to verify signatures and roles.
    public typealias Admission = @Sendable (Revision, RecordState?) throws -> Void

    public func receive(_ revisions: [Revision], forks: ForkHandling = .setAside, now: Int64, admit: Admission = { _, _ in }) throws
        -> ReceiveOutcome
    {
        try write { db in try Self.receive(db, revisions, forks: forks, now: now, admit: admit) }
    }

    /// Receives revisions from a peer after checking every new one's signature against the keys this
    /// replica knows plus `keys` (learned in the same transaction, trust on first use). A revision that
    /// is unsigned, of an unknown node, or altered rejects the whole batch.
    ///
    /// `admit` sees each new revision after its signature checked out, with the directory, for
    /// further rules (an enrolled replica refuses what its server would refuse).
    ///
    /// `unconfirmed`: the revisions come from a peer, not from the central node (a bundle): the
    /// newest counter applied per node is remembered, in the same transaction, until a sync confirms
    /// that the central node holds the same history of that node (spec 13, step 3).
    ///
    /// `remintingAs`: when the batch proves that this replica's own node id forked and where
    /// (``ReceiveOutcome/ownForkPoint``), re-mint this replica's branch under that node id and apply
    /// the batch again, all in the same transaction (an unenrolled replica's bundle import).
    ///
    /// `directoryTag`: the entity tag of the central node's directory that `keys` is; stored in the
    /// same transaction, so the next sync can ask for the directory only if it changed.
    ///
    /// `holding`: on a replica that pinned its central node's key, hold (neither merge nor push)
    /// each revision that central node would refuse, and what depends on it, instead of refusing
    /// the batch (a bundle import, spec 12.4); ``ReceiveOutcome/held`` lists them.
    ///
    /// `prechecked`: signatures already verified ahead (a pull verifies page k+1 while page k is
    /// written); each counts only where it verified with the key this replica holds for its node,
    /// and the rest are checked here as usual.
    public func receiveVerified(
        _ revisions: [Revision], learning keys: [KeyEntry] = [], from source: KeySource = .bundle, directoryTag: String? = nil,
        unconfirmed: Bool = false, prechecked: CheckedSignatures = .none,
        remintingAs fresh: NodeID? = nil, holding: Bool = false, now: Int64,
        admit: @escaping @Sendable (Revision, RecordState?, KeyDirectory) throws -> Void = { _, _, _ in }
    ) throws -> ReceiveOutcome {
        // Check signatures on all cores before the write transaction, against the keys known now plus
        // those offered. Inside the transaction a revision is only re-verified if its node's key is not
        // the one it was checked with (or it failed here, to report why).
        // Only the keys of the batch's authors: with thousands of nodes, the whole directory on every
        // page would cost more than the page.
        let authors = Set(revisions.map(\.dot.node)).union(keys.map(\.node))
        let (known, knowledge) = try read { db in (try Self.keyDirectory(db, certificates: false, only: authors), try Self.knowledge(db)) }
        var offered = known
        for key in keys where offered[key.node] == nil { offered.entries[key.node] = key }
        let checked = offered.checkSignatures(revisions, skipping: knowledge, given: prechecked)
        return try write { db in
            try Self.rememberKeys(db, keys, from: source)
            if let directoryTag { try db.execute(sql: "UPDATE replica SET keys_tag = ? WHERE id = 1", arguments: [directoryTag]) }
            let directory = try Self.keyDirectory(db, certificates: holding, only: authors)
            func apply() throws -> ReceiveOutcome {
                try Self.receive(
                    db, revisions, checked: checked, now: now, authenticate: { try directory.verify($0, checked: checked) },
                    hold: { holding ? Self.holdReason($0, in: directory, checked: checked) : nil }
                ) { revision, current in
                    try directory.verify(revision, checked: checked)
                    try admit(revision, current, directory)
                }
            }
            var outcome = try apply()
            if let fresh, outcome.ownNodeForked, let fork = outcome.ownForkPoint {
                let reminted = try Self.remint(
                    db, nil, from: fork, replacement: fresh, capping: [:],
                    reason: "a bundle holds other revisions under this replica's node from counter \(fork) (a restored copy or a clone)",
                    now: now)
                // Now the other copy's revisions of the old node id fit.
                let second = try apply()
                outcome.accepted += second.accepted
                outcome.duplicates = second.duplicates
                outcome.newConflicts += second.newConflicts
                outcome.resolutions += second.resolutions
                outcome.setAside = second.setAside
                outcome.setAsideDots = second.setAsideDots
                outcome.contested = second.contested
                outcome.knowledge = second.knowledge
                outcome.held = second.held
                for (node, counter) in second.appliedHeads { outcome.appliedHeads[node] = max(outcome.appliedHeads[node] ?? 0, counter) }
                outcome.reminted = reminted
            }
            if unconfirmed {
                let own = try Self.identity(db).node
                for (node, counter) in outcome.appliedHeads where node != own {
                    try db.execute(
                        sql: """
                            INSERT INTO unconfirmed_node (node, counter) VALUES (?, ?)
                            ON CONFLICT (node) DO UPDATE SET counter = MAX(counter, excluded.counter)
                            """, arguments: [node.rawValue, Int64(counter)])
                }
            }
            return outcome
        }
    }

    /// The entity tag of the central node's key directory this replica learned last, if any.
    public func directoryTag() throws -> String? {
        try read { db in try String.fetchOne(db, sql: "SELECT keys_tag FROM replica WHERE id = 1") }
    }

    /// Nodes whose revisions arrived from peers (bundles) and that the central node has not yet been
    /// seen to hold identically, with the newest counter so received.
    public func unconfirmedNodes() throws -> [Dot] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT node, counter FROM unconfirmed_node ORDER BY node").compactMap { row in
                NodeID(row["node"]).map { Dot(node: $0, counter: UInt64(row["counter"] as Int64)) }
            }
        }
    }

    /// The central node holds this replica's history of `dot.node` up to `dot.counter`.
    public func confirm(_ dot: Dot) throws {
        try write { db in
            try db.execute(
                sql: "DELETE FROM unconfirmed_node WHERE node = ? AND counter <= ?", arguments: [dot.node.rawValue, Int64(dot.counter)])
        }
    }

    /// Appends a ready revision to the log and folds it into the cached record state.
    /// `current` is the record's state as just loaded (nil for a new record), so it is read once.
    /// `sealed`: the row's body and received values as sealed ahead (on all cores) by ``sealRows(_:_:now:)``.
    static func apply(
        _ db: Database, _ revision: Revision, to current: RecordState?, authority: ResolutionAuthority, text: String? = nil,
        sealed: SealedRevisionRow? = nil, cache: inout [RecordID: RecordState], now: Int64
    ) throws -> Bool {
        var state = current ?? RecordState(id: revision.record)
        guard state.apply(revision, authority: authority) else { return false }
        cache[revision.record] = state
        // Cached statements: a batch inserts up to a thousand rows, and compiling SQL per row showed
        // up in profiles.
        if let sealed {
            try db.cachedStatement(sql: "INSERT INTO revision (node, counter, record, body, received) VALUES (?, ?, lookup(?), ?, ?)")
                .execute(arguments: [
                    revision.dot.node.rawValue, Int64(revision.dot.counter), revision.record.rawValue, sealed.body, sealed.received,
                ])
        } else {
            // A plaintext replica's seal and lookup are identities: its SQL leaves them out (three
            // calls into Swift per row were 2-3 % of a pull's CPU).
            try db.cachedStatement(sql: ColumnSealer.of(db).isEncrypted ? Self.insertSealedRevision : Self.insertPlainRevision)
                .execute(arguments: [
                    revision.dot.node.rawValue, Int64(revision.dot.counter), revision.record.rawValue, text ?? revision.canonicalForms.text,
                    now,
                ])
        }
        try rememberAttachmentReferences(db, of: revision)
        return true
    }

    static let upsertRecord = """
        INSERT INTO record (id, state, title, deleted, conflicts, updated) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET state = excluded.state, title = excluded.title,
            deleted = excluded.deleted, conflicts = excluded.conflicts, updated = excluded.updated
        """
    static let insertSealedRevision = "INSERT INTO revision (node, counter, record, body, received) VALUES \(Sealed.revisionValues)"
    static let insertPlainRevision = "INSERT INTO revision (node, counter, record, body, received) VALUES (?, ?, ?, ?, ?)"
    static let selectSealedState = "SELECT \(Sealed.recordState) FROM record WHERE id = lookup(?)"
    static let selectPlainState = "SELECT state FROM record WHERE id = ?"

    /// Records that this replica now holds `node`'s revisions up to `counter`. A batch's callers
    /// advance each node once, after its last revision, in the batch's own transaction.
    static func advanceKnowledge(_ db: Database, _ node: NodeID, to counter: UInt64) throws {
        try db.cachedStatement(
            sql: "INSERT INTO knowledge (node, counter) VALUES (?, ?) ON CONFLICT (node) DO UPDATE SET counter = excluded.counter"
        )
        .execute(arguments: [node.rawValue, Int64(counter)])
    }

    /// The body and received values of new revision rows, sealed on all cores before the batch is
    /// written; empty for a plaintext replica (its SQL takes the text as it is).
    static func sealRows(_ db: Database, _ texts: [(dot: Dot, text: String)], now: Int64) throws -> [Dot: SealedRevisionRow] {
        let sealer = ColumnSealer.of(db)
        guard sealer.isEncrypted, texts.count > 1 else { return [:] }
        let rows = texts.parallelMap { item -> Result<SealedRevisionRow, any Error> in
            Result {
                let key = "\(item.dot.node.rawValue)/\(item.dot.counter)"
                return SealedRevisionRow(
                    body: try sealer.seal(text: item.text, place: "revision.body/\(key)"),
                    received: try sealer.seal(integer: now, place: "revision.received/\(key)"))
            }
        }
        var byDot: [Dot: SealedRevisionRow] = [:]
        for (item, row) in zip(texts, rows) { byDot[item.dot] = try row.get() }
        return byDot
    }

    static func loadState(_ db: Database, _ id: RecordID, cache: inout [RecordID: RecordState]) throws -> RecordState? {
        if let cached = cache[id] { return cached }
        return try loadState(db, id)
    }

    static func loadState(_ db: Database, _ id: RecordID) throws -> RecordState? {
        let sql = ColumnSealer.of(db).isEncrypted ? selectSealedState : selectPlainState
        guard let text = try String.fetchOne(db.cachedStatement(sql: sql), arguments: [id.rawValue]) else { return nil }
        return try RecordState(json: JSONValue(parsing: text))
    }

    static func saveStates(_ db: Database, _ states: [RecordID: RecordState], now: Int64) throws {
        // Encoding the states is the costly part of a large batch: do it on all cores, then write.
        let ordered = states.values.sorted { $0.id < $1.id }
        let sealer = ColumnSealer.of(db)
        let upsert = Self.upsertRecord
        if sealer.isEncrypted {
            // Sealing too: each row's token and its three sealed values, made on all cores.
            let rows = ordered.parallelMap { state -> Result<[DatabaseValue], any Error> in
                Result {
                    let token = try sealer.token(state.id)
                    return [
                        token.value, try sealer.seal(text: state.storedText, place: "record.state/\(token.text)"),
                        try state.value(at: "title")?.stringValue.map { try sealer.seal(text: $0, place: "record.title/\(token.text)") }
                            ?? .null,
                        state.isDeleted.databaseValue, state.conflicts.count.databaseValue,
                        try sealer.seal(integer: now, place: "record.updated/\(token.text)"),
                    ]
                }
            }
            for row in rows {
                try db.cachedStatement(sql: upsert).execute(arguments: StatementArguments(try row.get()))
            }
            return
        }
        // A plaintext replica: seal and lookup are identities, so the values go in as they are.
        let texts = ordered.parallelMap { $0.storedText }
        for (state, text) in zip(ordered, texts) {
            try db.cachedStatement(sql: upsert).execute(arguments: [
                state.id.rawValue, text, state.value(at: "title")?.stringValue, state.isDeleted,
                state.conflicts.count, now,
            ])
        }
    }

    /// Up to `limit` revisions that a peer with `peer` knowledge lacks, in this replica's log order
    /// (a causal order), as stored canonical text.
    public func missing(from peer: VersionVector, limit: Int) throws -> MissingRevisions {
        try read { db in try Self.missing(db, from: peer, limit: limit) }
    }

    /// O(limit + lagging nodes) row reads, whatever the log's size: each node's missing revisions are
    /// a run of rising log positions, so the page is a merge of those runs by position (a heap of
    /// each run's next position), reading one body per revision sent. A peer that holds nothing
    /// reads the log from its start.
    static func missing(_ db: Database, from peer: VersionVector, limit: Int) throws -> MissingRevisions {
        let mine = try Self.knowledge(db)
        let lagging = mine.nodes.filter { mine[$0] > peer[$0] }
        if lagging.isEmpty { return MissingRevisions(texts: [], more: false) }
        if peer.isEmpty || lagging.allSatisfy({ peer[$0] == 0 }) && lagging.count == mine.nodes.count {
            let rows = try Row.fetchAll(
                db.cachedStatement(sql: "SELECT node, counter, \(Sealed.revisionBody) AS body FROM revision ORDER BY seq LIMIT ?"),
                arguments: [limit + 1])
            let page = rows.prefix(limit)
            let dots = page.compactMap { row in
                NodeID(row["node"] as String).map { Dot(node: $0, counter: UInt64(row["counter"] as Int64)) }
            }
            return MissingRevisions(
                texts: page.map { $0["body"] }, more: rows.count > limit, nodes: Set(dots.map(\.node)), dots: dots)
        }
        struct Next: Comparable {
            var seq: Int64
            var node: NodeID
            var counter: UInt64
            static func < (a: Next, b: Next) -> Bool { a.seq < b.seq }
        }
        let position = try db.cachedStatement(sql: "SELECT seq FROM revision WHERE node = ? AND counter = ?")
        func next(_ node: NodeID, _ counter: UInt64) throws -> Next? {
            guard counter <= mine[node],
                let seq = try Int64.fetchOne(position, arguments: [node.rawValue, Int64(counter)])
            else { return nil }
            return Next(seq: seq, node: node, counter: counter)
        }
        var heap = MinHeap<Next>()
        for node in lagging { if let first = try next(node, peer[node] + 1) { heap.push(first) } }
        let body = try db.cachedStatement(sql: "SELECT \(Sealed.revisionBody) FROM revision WHERE seq = ?")
        var texts: [String] = []
        var nodes = Set<NodeID>()
        var dots: [Dot] = []
        texts.reserveCapacity(min(limit, 1024))
        dots.reserveCapacity(min(limit, 1024))
        while texts.count < limit, let top = heap.pop() {
            if let text = try String.fetchOne(body, arguments: [top.seq]) {
                texts.append(text)
                nodes.insert(top.node)
                dots.append(Dot(node: top.node, counter: top.counter))
            }
            if let following = try next(top.node, top.counter + 1) { heap.push(following) }
        }
        return MissingRevisions(texts: texts, more: !heap.isEmpty, nodes: nodes, dots: dots)
    }

    /// Every revision in log order, for bundle export.
    public func allRevisions() throws -> [Revision] {
        try read { db in
            try String.fetchAll(db, sql: "SELECT \(Sealed.revisionBody) FROM revision ORDER BY seq").map {
                try Revision(json: JSONValue(parsing: $0))
            }
        }
    }

    // MARK: Records

    /// Finds the record whose id starts with `prefix` (at least 4 characters), as git does.
    public func resolveID(_ prefix: String) throws -> RecordID {
        let lower = prefix.lowercased()
        guard lower.count >= 4, lower.allSatisfy({ $0.isHexDigit || $0 == "-" }) else {
            throw StoreError(.invalid, "\"\(prefix)\" is not a record id: give at least 4 characters of an id shown by `fieldsync list`")
        }
        let ids = try read { db in
            // Sealed ids are tokens: the prefix is matched against each revealed id.
            isEncrypted
                ? Array(try String.fetchAll(db, sql: "SELECT reveal(id) FROM record").filter { $0.hasPrefix(lower) }.sorted().prefix(2))
                : try String.fetchAll(
                    db, sql: "SELECT id FROM record WHERE id >= ? AND id < ? ORDER BY id LIMIT 2", arguments: [lower, lower + "\u{FFFF}"])
        }
        switch ids.count {
        case 0: throw StoreError(.notFound, "no record with id \(prefix)")
        case 1: return RecordID(ids[0])!
        default: throw StoreError(.ambiguous, "id prefix \(prefix) matches more than one record; give more characters")
        }
    }

    public func record(_ id: RecordID) throws -> RecordState? {
        try read { db in try Self.loadState(db, id) }
    }

    /// Records ordered by id; optionally only those with open conflicts, or including deleted ones.
    public func records(conflictedOnly: Bool = false, includeDeleted: Bool = false) throws -> [RecordState] {
        var sql = "SELECT \(Sealed.recordState) FROM record WHERE 1 = 1"
        if conflictedOnly { sql += " AND conflicts > 0" }
        if !includeDeleted && !conflictedOnly { sql += " AND deleted = 0" }
        // Ordered here, not by SQL: a sealed replica's id column holds tokens.
        return try read { db in try String.fetchAll(db, sql: sql).map { try RecordState(json: JSONValue(parsing: $0)) } }
            .sorted { $0.id < $1.id }
    }

    /// A record's revisions in the order this replica received them.
    public func history(of id: RecordID) throws -> [StoredRevision] {
        try read { db in
            try Row.fetchAll(
                db,
                sql:
                    "SELECT seq, \(Sealed.revisionBody) AS body, \(Sealed.revisionReceived) AS received FROM revision WHERE record = lookup(?) ORDER BY seq",
                arguments: [id.rawValue]
            )
            .map { row in
                StoredRevision(
                    seq: row["seq"], revision: try Revision(json: JSONValue(parsing: row["body"] as String)), received: row["received"])
            }
        }
    }

    public func status() throws -> ReplicaStatus {
        try read { db in
            let identity = try Self.identity(db)
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT COUNT(*) AS records, COALESCE(SUM(deleted), 0) AS deleted,
                           COALESCE(SUM(conflicts > 0), 0) AS conflicted, COALESCE(SUM(conflicts), 0) AS conflicts
                    FROM record
                    """)!
            let revisions = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM revision") ?? 0
            return ReplicaStatus(
                identity: identity, records: row["records"] - (row["deleted"] as Int), deletedRecords: row["deleted"],
                revisions: revisions, conflictedRecords: row["conflicted"], conflicts: row["conflicts"], knowledge: try Self.knowledge(db),
                forkedRevisions: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM forked_revision") ?? 0,
                heldRevisions: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM held_revision") ?? 0)
        }
    }

    /// `PRAGMA integrity_check`; returns "ok" when the file is sound.
    public func integrityCheck() throws -> String {
        try read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check").joined(separator: "; ") }
    }

    // MARK: Transactions

    /// Runs `body` in one write transaction, mapping SQLite failures to ``StoreError``.
    func write<T>(_ body: (Database) throws -> T) throws -> T {
        do { return try writer.write(body) } catch let error as DatabaseError { throw StoreError.from(error, path: path) }
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        do { return try writer.read(body) } catch let error as DatabaseError { throw StoreError.from(error, path: path) }
    }
}

extension StoreError {
    static func from(_ error: DatabaseError, path: String) -> StoreError {
        switch error.resultCode {
        case .SQLITE_NOTADB: StoreError(.notAStore, "\(path) is not a FieldSync replica (not an SQLite database)")
        case .SQLITE_BUSY, .SQLITE_LOCKED: StoreError(.locked, "\(path) is locked by another process; try again when it finishes")
        case .SQLITE_READONLY, .SQLITE_PERM, .SQLITE_CANTOPEN: StoreError(.io, "cannot write \(path): check its permissions")
        case .SQLITE_CORRUPT: StoreError(.notAStore, "\(path) is damaged (SQLite reports corruption)")
        case .SQLITE_FULL: StoreError(.io, "the disk holding \(path) is full")
        default: StoreError(.io, "\(path): \(error.message ?? "SQLite error \(error.resultCode.rawValue)")")
        }
    }
}

/// The central node's storage on embedded SQLite: a ``ReplicaStore`` opened as a `DatabasePool`.
public struct SQLiteSyncStorage: SyncStorage {
    public let replica: ReplicaStore

    public init(replica: ReplicaStore) { self.replica = replica }

    public func nodeID() async throws -> NodeID {
        try await replica.asyncRead { db in try ReplicaStore.identity(db).node }
    }

    public func knowledge() async throws -> VersionVector {
        try await replica.asyncRead { db in try ReplicaStore.knowledge(db) }
    }

    public func store(_ revisions: [Revision], from owners: Set<NodeID>, admit: @escaping @Sendable (Revision, RecordState?) throws -> Void)
        async throws -> StoreOutcome
    {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        return StoreOutcome(
            try await replica.asyncWrite { db in
                try ReplicaStore.receive(db, revisions, forks: .refuseFrom(owners: owners), now: now, admit: admit)
            })
    }

    public func missing(from peer: VersionVector, limit: Int) async throws -> MissingRevisions {
        try await replica.asyncRead { db in try ReplicaStore.missing(db, from: peer, limit: limit) }
    }

    public func revisionText(at dot: Dot) async throws -> String? {
        try await replica.asyncRead { db in try ReplicaStore.revisionText(db, dot) }
    }
}

extension StoreOutcome {
    init(_ outcome: ReceiveOutcome) {
        self.init(
            accepted: outcome.accepted, duplicates: outcome.duplicates, newConflicts: outcome.newConflicts,
            resolutions: outcome.resolutions, setAside: outcome.setAsideDots, knowledge: outcome.knowledge)
    }
}

extension ReplicaStore {
    func asyncWrite<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do { return try await writer.write(body) } catch let error as DatabaseError { throw StoreError.from(error, path: path) }
    }

    func asyncRead<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do { return try await writer.read(body) } catch let error as DatabaseError { throw StoreError.from(error, path: path) }
    }
}

/// A revision row's sealed values, made ahead of the write.
struct SealedRevisionRow: @unchecked Sendable {
    var body: DatabaseValue
    var received: DatabaseValue
}
