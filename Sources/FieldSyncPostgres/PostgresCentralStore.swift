import FieldSyncCore
import FieldSyncProtocol
import Foundation
import Logging
import PostgresNIO

/// The central node's storage on PostgreSQL, shared by any number of `serve` instances.
///
/// Every write is one transaction that first takes one transaction-scoped advisory lock, under
/// READ COMMITTED: a receive reads, merges and rewrites record states, so two instances must never
/// merge one record from two stale states, and counters stay contiguous per node. A waiter sees
/// every row its predecessor committed (under REPEATABLE READ its snapshot would predate the wait).
/// Signature checks, decoding and TLS happen before the transaction, on every instance; reads
/// (pulls, key directories) take no lock.
public final class PostgresCentralStore: Sendable {
    public let url: PostgresURL
    let client: PostgresClient
    let logger: Logger
    /// The central node's node id and signing key, shared by every instance (spec 15.9).
    public let node: NodeID
    let key: DeviceKey
    /// How long a write waits for the lock before answering 503 with Retry-After.
    let lockTimeoutMilliseconds: Int

    /// The advisory lock every write transaction takes first.
    static let writeLock: Int64 = 0x6669_656C_6473_796E  // "fieldsyn"
    /// The lock migrations take, so that instances starting together migrate once.
    static let migrationLock: Int64 = 0x6669_656C_6473_6D67

    init(url: PostgresURL, client: PostgresClient, logger: Logger, node: NodeID, key: DeviceKey, lockTimeoutMilliseconds: Int) {
        self.url = url
        self.client = client
        self.logger = logger
        self.node = node
        self.key = key
        self.lockTimeoutMilliseconds = lockTimeoutMilliseconds
    }

    /// Connects to `url`, migrates its schema (creating the central node's identity on first use)
    /// and runs `body` with the store; the connections live for the call.
    ///
    /// Throws ``PostgresStoreError`` `.schema` for a schema newer than this build knows, and
    /// `.unreachable` when the database cannot be reached.
    public static func withStore<T: Sendable>(
        _ url: PostgresURL, logger: Logger = Logger(label: "fieldsync.postgres"), lockTimeoutMilliseconds: Int = 5000,
        _ body: @Sendable (PostgresCentralStore) async throws -> T
    ) async throws -> T {
        let client = PostgresClient(configuration: try url.clientConfiguration(), backgroundLogger: Self.quiet(logger))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            let (node, key) = try await Self.firstContact(client, url: url, logger: logger)
            let store = PostgresCentralStore(
                url: url, client: client, logger: logger, node: node, key: key, lockTimeoutMilliseconds: lockTimeoutMilliseconds)
            return try await body(store)
        }
    }

    /// The pool's own messages (reconnects, a lease racing `run()`) below error are noise for an
    /// operator; failures reach them as the errors of the calls that failed.
    static func quiet(_ logger: Logger) -> Logger {
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .error)
        return quiet
    }

    /// One direct connection first, outside the pool: a database that refuses or cannot be reached
    /// fails at once in one line (the pool would retry for about a minute), while a slow but
    /// reachable one (a loaded machine) is waited for.
    static func firstContact(_ client: PostgresClient, url: PostgresURL, logger: Logger) async throws -> (NodeID, DeviceKey) {
        do {
            let probe = try await PostgresConnection.connect(configuration: try url.connectionConfiguration(), id: 0, logger: quiet(logger))
            try? await probe.close()
        } catch {
            throw Self.mapped(error, url: url)
        }
        return try await prepare(client, url: url, logger: logger)
    }

    /// Migrates and reads (or, on an empty database, creates) the central node's identity.
    static func prepare(_ client: PostgresClient, url: PostgresURL, logger: Logger) async throws -> (NodeID, DeviceKey) {
        do {
            return try await client.withConnection { connection in
                try await connection.query("BEGIN", logger: logger)
                do {
                    try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: logger)
                    try await connection.query(
                        "CREATE TABLE IF NOT EXISTS fieldsync_schema (version integer PRIMARY KEY, name text NOT NULL, applied bigint NOT NULL)",
                        logger: logger)
                    var applied = 0
                    for try await version in try await connection.query(
                        "SELECT COALESCE(MAX(version), 0)::integer FROM fieldsync_schema", logger: logger
                    ).decode(Int.self) {
                        applied = version
                    }
                    guard applied <= PostgresSchema.current else {
                        throw PostgresStoreError(
                            .schema,
                            "\(url) has schema version \(applied), newer than this fieldsync knows (\(PostgresSchema.current)): upgrade fieldsync before serving it"
                        )
                    }
                    let now = Int64(Date().timeIntervalSince1970 * 1000)
                    for migration in PostgresSchema.migrations where migration.version > applied {
                        for statement in migration.statements { try await connection.query(statement, logger: logger) }
                        try await connection.query(
                            "INSERT INTO fieldsync_schema (version, name, applied) VALUES (\(migration.version), \(migration.name), \(now))",
                            logger: logger)
                    }
                    var identity: (String, ByteBuffer)?
                    for try await row in try await connection.query("SELECT node, private_key FROM central WHERE id = 1", logger: logger)
                        .decode((String, ByteBuffer).self)
                    {
                        identity = row
                    }
                    let result: (NodeID, DeviceKey)
                    if let (nodeText, keyBytes) = identity {
                        guard let node = NodeID(nodeText) else {
                            throw PostgresStoreError(.schema, "\(url): the central node's id is damaged")
                        }
                        result = (node, try DeviceKey(rawRepresentation: Array(buffer: keyBytes)))
                    } else {
                        let key = DeviceKey.generate()
                        let node = NodeBinding.fresh(publicKey: key.publicKeyBase64).node
                        try await connection.query(
                            """
                            INSERT INTO central (id, node, private_key, created, directory_version)
                            VALUES (1, \(node.rawValue), \(ByteBuffer(bytes: key.rawRepresentation)), \(now), \(Int64.random(in: 1...(1 << 40))))
                            """, logger: logger)
                        result = (node, key)
                    }
                    try await connection.query("COMMIT", logger: logger)
                    return result
                } catch {
                    _ = try? await connection.query("ROLLBACK", logger: logger)
                    throw error
                }
            }
        } catch {
            throw Self.mapped(error, url: url)
        }
    }

    /// A write transaction: the advisory lock first (waiting at most the lock timeout), then `body`.
    /// Committed when `body` returns, rolled back when it throws.
    @discardableResult
    func write<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await transaction(locked: true, writable: true, body)
    }

    /// A write that needs no serialising with batches (an audit line, a dropped upload): one
    /// transaction without the advisory lock, so pulls never queue behind a large push.
    @discardableResult
    func unlockedWrite<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await transaction(locked: false, writable: true, body)
    }

    /// A read-only transaction on one snapshot (REPEATABLE READ): no lock is taken.
    func read<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await transaction(locked: false, writable: false, body)
    }

    private func transaction<T: Sendable>(locked: Bool, writable: Bool = true, _ body: (PostgresConnection) async throws -> T) async throws
        -> T
    {
        do {
            return try await client.withConnection { connection in
                try await connection.query(
                    writable ? "BEGIN ISOLATION LEVEL READ COMMITTED" : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
                do {
                    if locked {
                        try await connection.query(
                            PostgresQuery(unsafeSQL: "SET LOCAL lock_timeout = '\(lockTimeoutMilliseconds)ms'"), logger: logger)
                        try await connection.query("SELECT pg_advisory_xact_lock(\(Self.writeLock))", logger: logger)
                    }
                    let value = try await body(connection)
                    try await connection.query("COMMIT", logger: logger)
                    return value
                } catch {
                    _ = try? await connection.query("ROLLBACK", logger: logger)
                    throw error
                }
            }
        } catch {
            throw Self.mapped(error, url: url)
        }
    }

    /// Protocol errors pass through; a lock wait that timed out (55P03) or a serialization failure
    /// (40001) is "busy" (503 with Retry-After); an unreachable database is one line.
    static func mapped(_ error: any Error, url: PostgresURL) -> any Error {
        if error is ProtocolError || error is PostgresStoreError || error is CancellationError { return error }
        if let error = error as? PSQLError {
            if let state = error.serverInfo?[.sqlState] {
                if state == "55P03" || state == "40001" || state == "40P01" {
                    return ProtocolError(.busy, "the central node is busy storing another batch; try again in a moment")
                }
                let message = error.serverInfo?[.message] ?? "error \(state)"
                return PostgresStoreError(.io, "\(url): \(message) (SQLSTATE \(state))")
            }
            switch error.code {
            case .connectionError, .serverClosedConnection, .clientClosedConnection, .unexpectedBackendMessage:
                return PostgresStoreError(
                    .unreachable, "cannot reach PostgreSQL at \(url): \(error.underlying.map { "\($0)" } ?? "\(error.code)")")
            default:
                return PostgresStoreError(.io, "\(url): \(error.code)")
            }
        }
        return error
    }
}

extension PostgresCentralStore: SyncStorage {
    public func nodeID() async throws -> NodeID { node }

    public func knowledge() async throws -> VersionVector {
        try await read { connection in try await Self.knowledge(connection, logger: logger) }
    }

    static func knowledge(_ connection: PostgresConnection, logger: Logger) async throws -> VersionVector {
        var vector = VersionVector()
        for try await (node, counter) in try await connection.query("SELECT node, counter FROM knowledge", logger: logger)
            .decode((String, Int64).self)
        {
            if let node = NodeID(node) { vector[node] = UInt64(counter) }
        }
        return vector
    }

    public func store(_ revisions: [Revision], from owners: Set<NodeID>, admit: @escaping @Sendable (Revision, RecordState?) throws -> Void)
        async throws -> StoreOutcome
    {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        return try await write { connection in
            try await PostgresReceive(connection: connection, logger: logger, now: now).receive(
                revisions, owners: owners, checked: .none, authenticate: { _ in }, admit: admit)
        }
    }

    /// One statement, so one snapshot: each lagging node's run of missing revisions (an index scan
    /// on `(node, counter)` per node, positions only), merged by log position; bodies are read for
    /// the page alone. O(limit × lagging nodes) index entries at most, whatever the log's size.
    public func missing(from peer: VersionVector, limit: Int) async throws -> MissingRevisions {
        let nodes = peer.nodes.map(\.rawValue)
        let counters = peer.nodes.map { Int64(peer[$0]) }
        return try await read { connection in
            let rows = try await connection.query(
                """
                SELECT r.node, r.body FROM (
                    SELECT l.seq FROM knowledge k
                    LEFT JOIN unnest(\(nodes)::text[], \(counters)::bigint[]) AS p(node, counter) ON p.node = k.node
                    CROSS JOIN LATERAL (
                        SELECT seq FROM revision
                        WHERE node = k.node AND counter > COALESCE(p.counter, 0) AND k.counter > COALESCE(p.counter, 0)
                        ORDER BY counter LIMIT \(limit + 1)
                    ) l
                    ORDER BY l.seq LIMIT \(limit + 1)
                ) page JOIN revision r ON r.seq = page.seq
                ORDER BY r.seq
                """, logger: logger)
            var page: [(node: String, body: String)] = []
            for try await row in rows.decode((String, String).self) { page.append(row) }
            let more = page.count > limit
            if more { page.removeLast() }
            return MissingRevisions(texts: page.map(\.body), more: more, nodes: Set(page.compactMap { NodeID($0.node) }))
        }
    }

    public func revisionText(at dot: Dot) async throws -> String? {
        try await read { connection in try await Self.revisionText(connection, dot, logger: logger) }
    }

    static func revisionText(_ connection: PostgresConnection, _ dot: Dot, logger: Logger) async throws -> String? {
        for try await body in try await connection.query(
            "SELECT body FROM revision WHERE node = \(dot.node.rawValue) AND counter = \(Int64(dot.counter))", logger: logger
        ).decode(String.self) {
            return body
        }
        return nil
    }
}
