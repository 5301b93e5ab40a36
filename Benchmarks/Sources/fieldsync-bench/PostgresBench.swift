// Section 10 (issue 17): the central node on PostgreSQL against the embedded SQLite node, in the
// same run. A durable cluster of its own (fsync and synchronous commit on, as SQLite's commits
// are), started in a temporary folder and stopped at exit.
import FieldSyncBlobs
import FieldSyncClient
import FieldSyncCore
import FieldSyncPostgres
import FieldSyncProtocol
import FieldSyncServer
import FieldSyncStore
import FieldSyncTestSupport
import Foundation
import Logging

/// One central node over a PostgreSQL database in this process, as `serve --database` runs it.
final class PostgresInstance: Sendable {
    let port: Int
    let task: Task<Void, any Error>
    var url: String { "http://127.0.0.1:\(port)" }

    init(port: Int, task: Task<Void, any Error>) {
        self.port = port
        self.task = task
    }

    static func start(_ database: PostgresURL) async throws -> PostgresInstance {
        let logger = quietLogger("fieldsync.bench-postgres")
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let task = Task {
            defer { continuation.finish() }
            try await PostgresCentralStore.withStore(database, logger: logger) { store in
                try await store.startDirectoryEpoch()
                let app = try buildApplication(
                    storage: store,
                    configuration: ServerConfiguration(
                        host: "127.0.0.1", port: 0, attachments: AttachmentConfiguration(blobs: PostgresBlobStorage(store: store))),
                    logger: logger
                ) { port in continuation.yield(port) }
                try await app.run()
            }
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            try await task.value
            throw StoreError(.invalid, "the PostgreSQL instance stopped before it listened")
        }
        return PostgresInstance(port: port, task: task)
    }

    func stop() async {
        task.cancel()
        _ = try? await task.value
    }
}

func quietLogger(_ label: String) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = .warning
    return logger
}

/// Enrols `replica` with a central node on PostgreSQL, reached at `url`, through the real code path.
func enrol(_ replica: ReplicaStore, as user: String, on admin: PostgresCentralStore, url: String) async throws {
    try await Enrolling.enrol(replica, code: try await Enrolling.issueCode(on: admin, for: user, role: .documenter), url: url)
}

/// The latencies of `clients` syncing `each` times at once, each client on its own transport.
func concurrentNoOps(_ clients: [ReplicaStore], each: Int) async throws -> [Double] {
    try await withThrowingTaskGroup(of: [Double].self) { group in
        for client in clients {
            group.addTask {
                var samples: [Double] = []
                for _ in 0..<each {
                    let transport = try Enrolling.transport(for: client)
                    let elapsed = try await seconds {
                        let report = try await SyncDriver(store: client, transport: transport, retries: 0).run()
                        precondition(report.pushed == 0 && report.pulled == 0, "a no-op sync moved revisions")
                    }
                    await transport.shutdown()
                    samples.append(elapsed)
                }
                return samples
            }
        }
        var all: [Double] = []
        for try await samples in group { all += samples }
        return all.sorted()
    }
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
}

/// `--postgres-noop`: only the no-op sync on PostgreSQL at `scale` against min(10,000, scale/10):
/// the archive pushed once into a durable cluster, then the pushing replica's no-op syncs.
func postgresNoOpSection(scale: Int) async throws {
    let admin = try await DedicatedThread.run { try PostgresTestCluster.start(durable: true) }
    setenv("FIELDSYNC_TEST_POSTGRES", admin.connectionString, 1)
    let logger = quietLogger("fieldsync.bench-admin")
    emit("FieldSync no-op sync on PostgreSQL, scale \(scale) revisions (\(ProcessInfo.processInfo.activeProcessorCount) cores)")
    func noOp(_ count: Int, name: String) async throws -> Double {
        let replica = try ReplicaStore.create(at: work.file("pg-noop-\(name).sqlite"), name: name, now: 1)
        let fillTime = try time { try fill(replica, count: count) }
        let database = try await PostgresTestCluster.freshDatabase()
        let instance = try await PostgresInstance.start(database)
        try await PostgresCentralStore.withStore(database, logger: logger) { admin in
            try await enrol(replica, as: name, on: admin, url: instance.url)
        }
        let pushTime = try await seconds { _ = try await syncOnce(replica) }
        note(String(format: "%d revisions: filled in %.1f s, pushed to PostgreSQL in %.1f s", count, fillTime, pushTime))
        _ = try await syncOnce(replica)
        let noOp = try await median { try await syncOnce(replica) }
        await instance.stop()
        return noOp
    }
    let small = min(10_000, max(1, scale / 10))
    let smallNoOp = try await noOp(small, name: "small")
    let largeNoOp = try await noOp(scale, name: "large")
    report("no-op sync on PostgreSQL at \(scale) vs \(small)", largeNoOp, smallNoOp, target: "<= 1.5")
}

/// `--postgres`: initial push and pull of `scale` revisions through one PostgreSQL-backed node
/// against the SQLite node (alternating which goes first, median of `rounds`); the no-op sync at
/// `scale` against one at min(10,000, scale/10) on PostgreSQL; and `clientCount` clients doing
/// no-op syncs at once against two PostgreSQL-backed instances against one SQLite node (p99).
func postgresSection(scale: Int, rounds: Int, clientCount: Int) async throws {
    let admin = try await DedicatedThread.run { try PostgresTestCluster.start(durable: true) }
    setenv("FIELDSYNC_TEST_POSTGRES", admin.connectionString, 1)
    let logger = quietLogger("fieldsync.bench-admin")
    emit("FieldSync on PostgreSQL against SQLite, scale \(scale) revisions (\(ProcessInfo.processInfo.activeProcessorCount) cores)")

    let source = try ReplicaStore.create(at: work.file("pg-source.sqlite"), name: "source", now: 1)
    let fillTime = try time { try fill(source, count: scale) }
    note(String(format: "filled the source replica with %d signed revisions in %.1f s", scale, fillTime))

    func push(_ store: ReplicaStore) async throws -> Double {
        try await seconds {
            let transport = try Enrolling.transport(for: store)
            let report = try await SyncDriver(store: store, transport: transport, batchSize: 1000, retries: 0).run()
            precondition(report.pushed == scale, "pushed \(report.pushed) of \(scale)")
            await transport.shutdown()
        }
    }

    // Initial push and pull, SQLite and PostgreSQL in turns.
    var pushRatios: [Double] = []
    var pullRatios: [Double] = []
    var largeDatabase: PostgresURL!
    var pulledFromPostgres: ReplicaStore!
    for round in 1...rounds {
        var figures: [String: (push: Double, pull: Double)] = [:]
        for backend in round % 2 == 1 ? ["sqlite", "postgres"] : ["postgres", "sqlite"] {
            let freshPath = work.file("pg-fresh-\(backend)-\(round).sqlite")
            let fresh = try ReplicaStore.create(at: freshPath, name: "fresh", now: 1)
            if backend == "sqlite" {
                let server = try await LiveServer.start(storePath: work.file("pg-sqlite-server-\(round).sqlite"))
                try await server.enrol(source, as: "source-\(round)")
                let pushed = try await push(source)
                try await server.enrol(fresh, as: "fresh-\(round)")
                let pulled = try await childSync(freshPath)
                precondition(pulled.pulled == scale)
                figures[backend] = (pushed, pulled.seconds)
                await server.stop()
            } else {
                let database = try await PostgresTestCluster.freshDatabase()
                let instance = try await PostgresInstance.start(database)
                try await PostgresCentralStore.withStore(database, logger: logger) { admin in
                    try await enrol(source, as: "source-\(round)", on: admin, url: instance.url)
                    try await enrol(fresh, as: "fresh-\(round)", on: admin, url: instance.url)
                }
                let pushed = try await push(source)
                let pulled = try await childSync(freshPath)
                precondition(pulled.pulled == scale)
                figures[backend] = (pushed, pulled.seconds)
                await instance.stop()
                largeDatabase = database
                pulledFromPostgres = fresh
            }
        }
        let (sqlite, postgres) = (figures["sqlite"]!, figures["postgres"]!)
        report("initial push (\(scale)), PostgreSQL vs SQLite", postgres.push, sqlite.push, target: "<= 1.5")
        report("initial pull (\(scale)), PostgreSQL vs SQLite", postgres.pull, sqlite.pull, target: "<= 1.5")
        pushRatios.append(postgres.push / sqlite.push)
        pullRatios.append(postgres.pull / sqlite.pull)
    }
    if rounds > 1 {
        emit(
            String(
                format: "| median of %d rounds: push ratio %.2f, pull ratio %.2f (PostgreSQL vs SQLite, target <= 1.5) |", rounds,
                pushRatios.sorted()[rounds / 2], pullRatios.sorted()[rounds / 2]))
    }

    // The no-op sync on PostgreSQL at `scale` against a small archive on PostgreSQL.
    do {
        let large = try await PostgresInstance.start(largeDatabase)
        // The replica that pulled everything is enrolled on this database already; only the
        // instance's port changed.
        let replica: ReplicaStore = pulledFromPostgres
        var enrolment = try replica.enrolment()!
        enrolment.server = large.url
        try replica.saveEnrolment(enrolment, now: 2)
        _ = try await syncOnce(replica)
        let noOpLarge = try await median { try await syncOnce(replica) }
        await large.stop()
        let smallScale = min(10_000, max(1, scale / 10))
        let smallDatabase = try await PostgresTestCluster.freshDatabase()
        let smallInstance = try await PostgresInstance.start(smallDatabase)
        let small = try ReplicaStore.create(at: work.file("pg-small.sqlite"), name: "small", now: 1)
        try fill(small, count: smallScale)
        try await PostgresCentralStore.withStore(smallDatabase, logger: logger) { admin in
            try await enrol(small, as: "noop-small", on: admin, url: smallInstance.url)
        }
        _ = try await syncOnce(small)
        let noOpSmall = try await median { try await syncOnce(small) }
        await smallInstance.stop()
        report("no-op sync on PostgreSQL at \(scale) vs \(smallScale)", noOpLarge, noOpSmall, target: "<= 1.5")
    }

    // Many clients at once: two PostgreSQL-backed instances against one SQLite node, each holding
    // what the clients wrote (20 revisions each), every client up to date before the timing.
    do {
        let each = 10
        func clients(_ name: String) throws -> [ReplicaStore] {
            try (0..<clientCount).map { i in
                let client = try ReplicaStore.create(at: work.file("pg-\(name)-client-\(i).sqlite"), name: "c\(i)", now: 1)
                try fill(client, count: 20)
                return client
            }
        }
        func settle(_ clients: [ReplicaStore]) async throws {
            for _ in 0..<2 { for client in clients { _ = try await syncOnce(client) } }
        }
        let sqliteClients = try clients("sqlite")
        let sqliteServer = try await LiveServer.start(storePath: work.file("pg-many-sqlite.sqlite"))
        for (i, client) in sqliteClients.enumerated() { try await sqliteServer.enrol(client, as: "sqlite-\(i)") }
        try await settle(sqliteClients)

        let postgresClients = try clients("postgres")
        let database = try await PostgresTestCluster.freshDatabase()
        let instances = [try await PostgresInstance.start(database), try await PostgresInstance.start(database)]
        try await PostgresCentralStore.withStore(database, logger: logger) { admin in
            for (i, client) in postgresClients.enumerated() {
                try await enrol(client, as: "postgres-\(i)", on: admin, url: instances[i % instances.count].url)
            }
        }
        try await settle(postgresClients)

        var sqliteSamples: [Double] = []
        var postgresSamples: [Double] = []
        for round in 0..<2 {
            if round == 0 {
                sqliteSamples += try await concurrentNoOps(sqliteClients, each: each)
                postgresSamples += try await concurrentNoOps(postgresClients, each: each)
            } else {
                postgresSamples += try await concurrentNoOps(postgresClients, each: each)
                sqliteSamples += try await concurrentNoOps(sqliteClients, each: each)
            }
        }
        sqliteSamples.sort()
        postgresSamples.sort()
        report(
            "\(clientCount) clients' no-op p99, 2 PostgreSQL instances vs 1 SQLite", percentile(postgresSamples, 0.99),
            percentile(sqliteSamples, 0.99), target: "<= 1")
        note(
            String(
                format: "p50 %.1f ms on PostgreSQL, %.1f ms on SQLite; %d syncs each", percentile(postgresSamples, 0.5) * 1000,
                percentile(sqliteSamples, 0.5) * 1000, postgresSamples.count))
        for instance in instances { await instance.stop() }
        await sqliteServer.stop()
    }
}
