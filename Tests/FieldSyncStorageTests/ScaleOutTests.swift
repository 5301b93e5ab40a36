import FieldSyncClient
import FieldSyncCore
import FieldSyncPostgres
import FieldSyncProtocol
import FieldSyncStore
import FieldSyncTestSupport
import Foundation
import Logging
import Testing

/// Several `fieldsync serve --database` instances on one PostgreSQL database behind a round-robin
/// proxy: concurrent clients, pushes retried on another instance, and an instance killed mid-push.
@Suite struct ScaleOutTests {
    let dir: TemporaryDirectory
    init() throws { dir = try TemporaryDirectory("scale-out") }

    static func port(_ server: ServerProcess) -> Int { URLComponents(string: server.url)!.port! }

    func start(instances: Int, on url: PostgresURL) async throws -> [ServerProcess] {
        var servers: [ServerProcess] = []
        for _ in 0..<instances {
            servers.append(
                try await ServerProcess.start(
                    binary: try FieldSyncBinary(),
                    arguments: ["serve", "--database", url.connectionString, "--host", "127.0.0.1", "--port", "0"]))
        }
        return servers
    }

    /// `count` replicas enrolled through `proxy`, each with `revisions` incidents of its own.
    func clients(_ count: Int, revisions: Int, url: PostgresURL, proxy: WeakLinkProxy) async throws -> [ReplicaStore] {
        let codes = try await PostgresCentralStore.withStore(url, logger: Self.logger) { store in
            var issued: [String] = []
            for i in 0..<count { issued.append(try await Enrolling.issueCode(on: store, for: "user\(i)", role: .documenter)) }
            return issued
        }
        var replicas: [ReplicaStore] = []
        for (i, code) in codes.enumerated() {
            let replica = try ReplicaStore.create(at: dir.file("client\(i).sqlite"), name: "client\(i)", now: 1)
            try await Enrolling.enrol(replica, code: code, url: proxy.url)
            for j in 0..<revisions { try Fixtures.addIncident(replica, title: "Client \(i), incident \(j)") }
            replicas.append(replica)
        }
        return replicas
    }

    static var logger: Logger {
        var logger = Logger(label: "fieldsync.scale-out")
        logger.logLevel = .warning
        return logger
    }

    static func sync(_ replica: ReplicaStore, batchSize: Int = 25) async throws -> SyncReport {
        let transport = try Enrolling.transport(for: replica)
        do {
            let report = try await SyncDriver(store: replica, transport: transport, batchSize: batchSize, retries: 10).run()
            await transport.shutdown()
            return report
        } catch {
            await transport.shutdown()
            throw error
        }
    }

    /// After every client synced twice more, each holds every revision, and the database holds
    /// each exactly once with contiguous counters.
    func expectConverged(_ replicas: [ReplicaStore], total: Int, url: PostgresURL) async throws {
        for _ in 0..<2 { for replica in replicas { _ = try await Self.sync(replica, batchSize: 500) } }
        let states = try Set(replicas.map(Fixtures.canonicalState))
        #expect(states.count == 1, "every replica identical")
        try await PostgresCentralStore.withStore(url, logger: Self.logger) { store in
            let knowledge = try await store.knowledge()
            #expect(knowledge.total == UInt64(total))
            var seen = Set<Dot>()
            var pulled = VersionVector()
            while true {
                let page = try await store.missing(from: pulled, limit: 1000)
                for text in page.texts {
                    let dot = try Revision(json: JSONValue(parsing: text)).dot
                    #expect(seen.insert(dot).inserted, "\(dot) stored once")
                    pulled.add(dot)
                }
                if !page.more { break }
            }
            #expect(seen.count == total)
            for node in knowledge.nodes { #expect((1...knowledge[node]).allSatisfy { seen.contains(Dot(node: node, counter: $0)) }) }
        }
    }

    @Test func twentyClientsThroughTwoInstancesStoreEveryRevisionExactlyOnce() async throws {
        let url = try await PostgresTestCluster.freshDatabase()
        let servers = try await start(instances: 2, on: url)
        let proxy = try WeakLinkProxy(targetPorts: servers.map(Self.port))
        let replicas = try await clients(20, revisions: 100, url: url, proxy: proxy)
        try await withThrowingTaskGroup(of: SyncReport.self) { group in
            for replica in replicas { group.addTask { try await Self.sync(replica) } }
            for try await report in group { #expect(report.pushed == 100) }
        }
        // A batch pushed again (its answer lost) through the other instance is harmless.
        let transport = try Enrolling.transport(for: replicas[0])
        let again = try await transport.push(
            node: try replicas[0].identity().node, revisionTexts: try replicas[0].missing(from: VersionVector(), limit: 100).texts)
        await transport.shutdown()
        #expect(again.accepted == 0)
        try await expectConverged(replicas, total: 2000, url: url)
        #expect(proxy.connectionsPerTarget.count == 2, "both instances served: \(proxy.connectionsPerTarget)")
        proxy.stop()
        for server in servers { #expect(await server.stop() == 0) }
    }

    @Test func killingOneInstanceMidPushLosesNothingAndTheClientsFinishThroughTheOther() async throws {
        let url = try await PostgresTestCluster.freshDatabase()
        let servers = try await start(instances: 2, on: url)
        let proxy = try WeakLinkProxy(targetPorts: servers.map(Self.port))
        let replicas = try await clients(6, revisions: 200, url: url, proxy: proxy)
        // The first instance dies once the clients have sent a few batches.
        proxy.whenBytes(reach: 400_000) { kill(servers[0].processIdentifier, SIGKILL) }
        try await withThrowingTaskGroup(of: SyncReport.self) { group in
            for replica in replicas { group.addTask { try await Self.sync(replica, batchSize: 10) } }
            for try await report in group { #expect(report.pushed == 200) }
        }
        #expect(await servers[0].stop() != 0, "the first instance was killed")
        try await expectConverged(replicas, total: 1200, url: url)
        proxy.stop()
        #expect(await servers[1].stop() == 0)
    }
}
