import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore
import FieldSyncTestSupport
import Foundation
import Testing

/// #13 sections 3 and 4: the central node vouches for every key, and nothing a bundle carries can
/// block a sync. Hostile bundles are composed here the way a modified client would write them.
@Suite struct TrustCommandTests {
    let w: CLIWorkspace
    init() throws { w = try CLIWorkspace("trust") }

    var serverStore: String { w.dir.file("central.sqlite") }

    func node(_ name: String) throws -> NodeID { try ReplicaStore.open(at: w.store(name)).identity().node }

    /// A documenter writes a bundle under a colleague's node id, with a fresh key of their own and
    /// a forged revision. An enrolled admin holds it, never shows it as verified, and keeps syncing;
    /// an unenrolled replica that trusts it on first use says it is not vouched for.
    @Test func aBundleForgingAColleaguesNodeIsHeldAndNeverVerified() async throws {
        let server = try await ServerProcess.start(binary: w.binary, store: serverStore)
        try await w.initReplica("admin", server: server.url, serverStore: serverStore, role: "admin")
        try await w.initReplica("rima", server: server.url, serverStore: serverStore)
        try await w.initReplica("lone")
        let rimaNode = try node("rima")
        let record = RecordID.generate(millisecondsSince1970: 1_741_340_000_000)
        let forger = DeviceKey.generate()
        let forged = try forger.sign(
            Revision(
                dot: Dot(node: rimaNode, counter: 1), record: record, kind: .put,
                operations: [
                    .set(path: "title", value: "Village raid"), .set(path: "casualties.killed", value: 0),
                    .set(path: "narrative", value: "no casualties"),
                ],
                context: VersionVector(), author: "rima", time: 1_741_340_000_000))
        let bundle = BundleFile(
            from: rimaNode, knowledge: VersionVector([rimaNode: 1]), revisions: [forged], created: 1_741_340_000_000,
            keys: [KeyEntry(node: rimaNode, publicKey: forger.publicKeyBase64, user: "rima", role: .admin)])
        let path = w.dir.file("forged.bundle")
        try Data(bundle.fileBytes).write(to: URL(fileURLWithPath: path))

        let imported = try await w.ok("admin", "bundle", "import", path)
        #expect(
            imported.stdout.contains("held 1 revision from node \(rimaNode): node \(rimaNode) is not vouched for by your central node"),
            "\(imported)")
        let held = try #require(try await w.ok("admin", "bundle", "held", "--json").json().arrayValue)
        #expect(held.compactMap { $0["id"]?.stringValue } == ["\(rimaNode):1"])
        #expect(try await w.ok("admin", "list", "--json").json().arrayValue?.isEmpty == true, "a held revision is not merged")
        #expect(try await w.ok("admin", "status", "--json").json()["held_revisions"] == 1)

        // Rima's real first revision reaches the server; the admin's syncs all complete, the real
        // one arrives verified, and the forgery stays held with the reason why.
        let real = try await w.add("rima", "--title", "Village raid", "--set", "casualties.killed=7")
        _ = try await w.ok("rima", "sync")
        _ = try await w.add("admin", "--title", "Admin's own work")
        let synced = try await w.ok("admin", "sync", "--json").json()
        #expect(synced["pushed"] == 1)
        #expect(synced["held"] == 1)
        _ = try await w.ok("admin", "sync")
        let history = try #require(try await w.ok("admin", "show", real, "--history", "--json").json()["history"]?.arrayValue)
        #expect(history.map { $0["signature"] } == ["verified"])
        #expect(try await w.show("admin", real)["fields"]?["casualties"]?["killed"] == 7)
        let still = try #require(try await w.ok("admin", "bundle", "held", "--json").json().arrayValue)
        #expect(still.first?["reason"]?.stringValue?.contains("not signed by the key your central node vouches for") == true, "\(still)")

        // Without a central node, the key is trusted on first use, and said to be.
        try await w.ok("lone", "bundle", "import", path)
        let shown = try await w.ok("lone", "show", record.rawValue, "--history").stdout
        #expect(shown.contains("signature: unverified (key not vouched for)"), "\(shown)")
        let lone = try #require(try await w.ok("lone", "show", record.rawValue, "--history", "--json").json()["history"]?.arrayValue)
        #expect(lone.map { $0["signature"] } == ["unverified"])
        // When it enrols, the certified key wins: its sync completes, Rima's real revision takes
        // the dot, and the forgery is kept aside as evidence, never pushed.
        try await w.enrol("lone", server: server.url, serverStore: serverStore)
        let enrolledSync = try await w.ok("lone", "sync", "--json").json()
        #expect(enrolledSync["pushed"] == 0, "the forgery never reaches the server")
        #expect(try await w.show("lone", real)["fields"]?["casualties"]?["killed"] == 7)
        let loneStatus = try await w.ok("lone", "status", "--json").json()
        #expect((loneStatus["forked_revisions"]?.intValue ?? 0) + (loneStatus["held_revisions"]?.intValue ?? 0) == 1)
        let central = try ReplicaStore.open(at: serverStore)
        #expect(try central.record(record)?.value(at: "narrative") == nil, "no one's central node holds the forged narrative")
        _ = await server.stop()
    }

    /// The reproduction of section 4: an unenrolled replica imports a documenter's bundle, resolves
    /// a conflict and exports a bundle; an enrolled admin imports it. The admin still sees the
    /// conflict, holds the unvouched resolution, and every sync of the admin's completes.
    @Test func anUnvouchedResolutionFromABundleIsHeldAndSyncsComplete() async throws {
        let server = try await ServerProcess.start(binary: w.binary, store: serverStore)
        try await w.initReplica("admin", server: server.url, serverStore: serverStore, role: "admin")
        try await w.initReplica("rima", server: server.url, serverStore: serverStore)
        try await w.initReplica("omar", server: server.url, serverStore: serverStore)
        try await w.initReplica("lone")
        let id = try await w.add("rima", "--title", "Shelling of the market", "--set", "casualties.killed=10")
        _ = try await w.ok("rima", "sync")
        _ = try await w.ok("omar", "sync")
        try await w.ok("rima", "edit", id, "--set", "casualties.killed=12")
        try await w.ok("omar", "edit", id, "--set", "casualties.killed=15")
        _ = try await w.ok("rima", "sync")
        _ = try await w.ok("omar", "sync")
        _ = try await w.ok("rima", "sync")
        try await w.ok("rima", "bundle", "export", "--out", w.dir.file("rima.bundle"))
        try await w.ok("lone", "bundle", "import", w.dir.file("rima.bundle"))
        try await w.ok("lone", "resolve", id, "--pick", "casualties.killed=1", "--note", "my reading")
        #expect(try await w.show("lone", id)["conflicts"] == [], "unenrolled, anyone's resolve ends a conflict")
        try await w.ok("lone", "bundle", "export", "--out", w.dir.file("lone.bundle"))

        let imported = try await w.ok("admin", "bundle", "import", w.dir.file("lone.bundle"), "--json").json()
        #expect(imported["held"] == 1)
        #expect(try await w.show("admin", id)["conflicts"]?.arrayValue?.count == 1, "the admin still sees the conflict")
        _ = try await w.add("admin", "--title", "Admin's new work")
        for _ in 0..<2 {
            let synced = try await w.run("admin", "sync", "--json")
            #expect(synced.status == 0, "\(synced)")
        }
        #expect(try ReplicaStore.open(at: serverStore).status().records == 2)
        try await w.ok("admin", "resolve", id, "--pick", "casualties.killed=2", "--note", "Hospital list")
        _ = try await w.ok("admin", "sync")
        _ = try await w.ok("rima", "sync")
        #expect(try await w.show("rima", id)["conflicts"] == [])
        _ = await server.stop()
    }

    /// Held revisions are released once the central node vouches for their node: a documenter
    /// records and hands over a bundle before enrolling; the admin holds it, and the admin's first
    /// sync after the documenter enrolled merges it.
    @Test func heldRevisionsAreReleasedWhenTheCentralNodeVouchesForThem() async throws {
        let server = try await ServerProcess.start(binary: w.binary, store: serverStore)
        try await w.initReplica("admin", server: server.url, serverStore: serverStore, role: "admin")
        try await w.initReplica("nour")
        let id = try await w.add("nour", "--title", "Looting of the pharmacy")
        try await w.ok("nour", "bundle", "export", "--out", w.dir.file("nour.bundle"))
        let imported = try await w.ok("admin", "bundle", "import", w.dir.file("nour.bundle"), "--json").json()
        #expect(imported["held"] == 1)
        #expect(try await w.run("admin", "show", id).status == 1, "held, not merged")
        _ = try await w.ok("admin", "sync")
        #expect(try await w.ok("admin", "status", "--json").json()["held_revisions"] == 1, "still not vouched for")
        try await w.enrol("nour", server: server.url, serverStore: serverStore)
        let synced = try await w.ok("admin", "sync", "--json").json()
        #expect(synced["released"] == 1)
        #expect(synced["held"] == 0)
        #expect(try await w.show("admin", id)["fields"]?["title"] == "Looting of the pharmacy")
        let history = try #require(try await w.ok("admin", "show", id, "--history", "--json").json()["history"]?.arrayValue)
        #expect(history.map { $0["signature"] } == ["verified"])
        // Nour's own sync then finds the server holding it already.
        #expect(try await w.ok("nour", "sync", "--json").json()["pushed"] == 0)
        _ = await server.stop()
    }

    /// Two contents of one dot held from two bundles (a cloned laptop's, say): once the central
    /// node vouches for their node, the release merges one, keeps the other held, and never fails.
    @Test func twoHeldContentsOfOneDotAreReleasedWithoutFailingTheSync() async throws {
        let server = try await ServerProcess.start(binary: w.binary, store: serverStore)
        try await w.initReplica("admin", server: server.url, serverStore: serverStore, role: "admin")
        try await w.initReplica("nour")
        let nour = try ReplicaStore.open(at: w.store("nour"))
        let node = try nour.identity().node
        let record = RecordID.generate(millisecondsSince1970: 1_741_340_000_000)
        for (i, title) in ["First copy", "Second copy"].enumerated() {
            let revision = try nour.sign(
                Revision(
                    dot: Dot(node: node, counter: 1), record: record, operations: [.set(path: "title", value: .string(title))],
                    context: VersionVector(), author: "nour", time: 1_741_340_000_000 + Int64(i)))
            let bundle = BundleFile(
                from: node, knowledge: VersionVector([node: 1]), revisions: [revision], created: 1,
                keys: [KeyEntry(node: node, publicKey: try nour.publicKey())])
            try Data(bundle.fileBytes).write(to: URL(fileURLWithPath: w.dir.file("copy\(i).bundle")))
            try await w.ok("admin", "bundle", "import", w.dir.file("copy\(i).bundle"))
        }
        #expect(try await w.ok("admin", "status", "--json").json()["held_revisions"] == 2)
        try await w.enrol("nour", server: server.url, serverStore: serverStore)
        let synced = try await w.ok("admin", "sync", "--json").json()
        #expect(synced["released"] == 1)
        #expect(synced["held"] == 1)
        #expect(try await w.ok("admin", "sync").status == 0, "and the next sync completes too")
        _ = await server.stop()
    }

    /// A device revoked on the central node after a documenter imported its bundle: the importer
    /// merged its revisions and built on them, not knowing. The next sync holds them back, re-mints
    /// the documenter's own work built on them, and completes; nothing of the documenter's is lost.
    @Test func revisionsOfADeviceRevokedSinceAreHeldBackAndOwnWorkIsReminted() async throws {
        let server = try await ServerProcess.start(binary: w.binary, store: serverStore)
        try await w.initReplica("admin", server: server.url, serverStore: serverStore, role: "admin")
        try await w.initReplica("rima", server: server.url, serverStore: serverStore)
        try await w.initReplica("lina", server: server.url, serverStore: serverStore)
        _ = try await w.ok("rima", "sync")
        let id = try await w.add("lina", "--title", "Detentions at the school", "--set", "casualties.killed=4")
        try await w.ok("lina", "bundle", "export", "--out", w.dir.file("lina.bundle"))
        try await w.ok("rima", "bundle", "import", w.dir.file("lina.bundle"))
        try await w.ok("rima", "edit", id, "--set", "narrative=Four men taken from the school")
        let own = try await w.add("rima", "--title", "Rima's own incident")
        // Lina's laptop is seized before it syncs: the admin revokes it.
        let linaNode = try node("lina")
        try await w.ok("admin", "devices", "revoke", linaNode.rawValue)
        let synced = try await w.ok("rima", "sync", "--json").json()
        #expect(synced["held_back"] == 1)
        // The edit built on Lina's revision, and everything Rima wrote after it, under a new node id.
        #expect(synced["reminted"] == 2)
        #expect(try await w.ok("rima", "sync", "--json").json()["pushed"] == 0)
        let central = try ReplicaStore.open(at: serverStore)
        #expect(try central.record(RecordID(own)!) != nil)
        #expect(try central.allRevisions().allSatisfy { $0.dot.node != linaNode })
        // Rima's edit of Lina's record reached the server, re-minted without Lina's revision.
        #expect(try central.record(RecordID(id)!)?.value(at: "narrative") == "Four men taken from the school")
        let held = try #require(try await w.ok("rima", "bundle", "held", "--json").json().arrayValue)
        #expect(held.compactMap { $0["id"]?.stringValue } == ["\(linaNode):1"])
        #expect(held.first?["reason"]?.stringValue?.contains("revoked") == true)
        _ = await server.stop()
    }

    /// A replica made before node ids were bound to keys re-mints its work under a bound id when it
    /// enrols, and that work reaches the central node; `serve` prints the key `enroll` pins.
    @Test func aReplicaWithAnUnboundNodeIDReMintsWhenItEnrols() async throws {
        let server = try await ServerProcess.start(binary: w.binary, store: serverStore)
        let fingerprint = try #require(
            server.log.range(of: #"central node key sha256:[0-9a-f]{64}"#, options: .regularExpression).map {
                String(server.log[$0].dropFirst("central node key ".count))
            })
        let legacy = NodeID.random()
        _ = try ReplicaStore.create(at: w.store("old"), name: "old", node: legacy, now: 1)
        let id = try await w.add("old", "--title", "Recorded before enrolment")
        let code = try #require(
            try await w.binary.run(["server", "add-user", "old", "--role", "documenter", "--store", serverStore, "--json"]).json()["code"]?
                .stringValue)
        let wrong = try await w.run(
            "old", "enroll", "--server", server.url, "--code", code, "--server-key", "sha256:" + String(repeating: "0", count: 64))
        #expect(wrong.status == 1 && wrong.stderr.contains("not the expected"), "\(wrong)")
        let code2 = try #require(
            try await w.binary.run(["server", "add-user", "old", "--role", "documenter", "--store", serverStore, "--json"]).json()["code"]?
                .stringValue)
        let enrolled = try await w.ok("old", "enroll", "--server", server.url, "--code", code2, "--server-key", fingerprint, "--json")
            .json()
        #expect(enrolled["server_key"]?.stringValue == fingerprint)
        let node = try #require(enrolled["node"]?.stringValue.flatMap(NodeID.init))
        #expect(node != legacy)
        let store = try ReplicaStore.open(at: w.store("old"))
        #expect(NodeBinding.isBound(node, publicKey: try store.publicKey(), nonce: try store.nodeNonce(node)))
        #expect(try store.identity().retiredNodes.contains(legacy))
        #expect(try await w.ok("old", "sync", "--json").json()["pushed"] == 1)
        #expect(try ReplicaStore.open(at: serverStore).record(RecordID(id)!) != nil)
        let history = try #require(try await w.ok("old", "show", id, "--history", "--json").json()["history"]?.arrayValue)
        #expect(history.map { $0["signature"] } == ["verified"])
        _ = await server.stop()
    }
}

/// #13 section 7: re-enrolling never strands work.
@Suite struct ReEnrolmentTests {
    let w: CLIWorkspace
    init() throws { w = try CLIWorkspace("reenrol") }

    var serverStore: String { w.dir.file("central.sqlite") }

    func code(_ user: String) async throws -> String {
        try #require(
            try await w.binary.run(["server", "add-user", user, "--role", "documenter", "--store", serverStore, "--json"]).json()["code"]?
                .stringValue)
    }

    /// A documenter's device is revoked while it holds unpushed work; she enrols again with a new
    /// code. The work reaches the server under the new, certified node id, signed by a new key; the
    /// old node id's late revisions stay refused.
    @Test func aRevokedDeviceEnrolsAgainAndItsUnpushedWorkArrivesReminted() async throws {
        let server = try await ServerProcess.start(binary: w.binary, store: serverStore)
        try await w.initReplica("admin", server: server.url, serverStore: serverStore, role: "admin")
        try await w.initReplica("rima", server: server.url, serverStore: serverStore)
        let first = try await w.add("rima", "--title", "Pushed before the checkpoint")
        _ = try await w.ok("rima", "sync")
        let late = try await w.add("rima", "--title", "Written after", "--set", "casualties.killed=3")
        try await w.ok("rima", "edit", first, "--set", "narrative=More detail")
        let oldNode = try ReplicaStore.open(at: w.store("rima")).identity().node
        let oldKey = try ReplicaStore.open(at: w.store("rima")).publicKey()
        try await w.ok("admin", "devices", "revoke", oldNode.rawValue)
        let refused = try await w.run("rima", "sync")
        #expect(refused.status == 1)

        // A wrong code changes nothing: the same node id and key, the old enrolment kept.
        let wrong = try await w.run("rima", "enroll", "--server", server.url + "/", "--code", "not-a-code")
        #expect(wrong.status == 1, "\(wrong)")
        #expect(try ReplicaStore.open(at: w.store("rima")).identity().node == oldNode)
        #expect(try ReplicaStore.open(at: w.store("rima")).publicKey() == oldKey)
        let again = try await w.ok("rima", "enroll", "--server", server.url, "--code", try await code("rima"), "--json").json()
        #expect(again["reminted"] == 2)
        let store = try ReplicaStore.open(at: w.store("rima"))
        let newNode = try store.identity().node
        #expect(newNode != oldNode)
        #expect(try store.publicKey() != oldKey, "a new device key: whoever holds the old one cannot write as this replica")
        #expect(try await w.ok("rima", "sync", "--json").json()["pushed"] == 2)
        let central = try ReplicaStore.open(at: serverStore)
        #expect(try central.record(RecordID(late)!)?.value(at: "casualties.killed") == 3)
        #expect(try central.record(RecordID(first)!)?.value(at: "narrative") == "More detail")
        #expect(try central.knowledge()[oldNode] == 1, "the revoked node's late revisions never reach the server")
        // Her earlier revision, signed by the old key, still verifies.
        let history = try #require(try await w.ok("rima", "show", first, "--history", "--json").json()["history"]?.arrayValue)
        #expect(history.map { $0["signature"] } == ["verified", "verified"])
        // Enrolling once more while the token works changes nothing.
        let needless = try await w.ok("rima", "enroll", "--server", server.url, "--code", try await code("rima"))
        #expect(needless.stdout.contains("its token works; nothing to do"), "\(needless)")
        #expect(try ReplicaStore.open(at: w.store("rima")).identity().node == newNode)
        _ = await server.stop()
    }

    /// An enrolment whose answer was lost, and a new code: the node id is enrolled already, so the
    /// CLI takes another, re-mints what was written under the first, and enrols; nothing is lost.
    @Test func aNewCodeAfterALostAnswerEnrolsUnderAnotherNodeID() async throws {
        try await w.initReplica("lina")
        _ = try await w.add("lina", "--title", "Recorded before enrolling")
        _ = try await code("admin")  // creates the central node's store
        let lina = try ReplicaStore.open(at: w.store("lina"))
        let first = try lina.identity().node
        do {
            let central = try ReplicaStore.open(at: serverStore)
            _ = try await Enrolling.token(for: lina, on: central, user: "lina")  // enrolled; the answer never reached Lina
            try central.close()
        }
        let server = try await ServerProcess.start(binary: w.binary, store: serverStore)
        try await w.ok("lina", "enroll", "--server", server.url, "--code", try await code("lina"))
        let now = try ReplicaStore.open(at: w.store("lina")).identity()
        #expect(now.node != first)
        #expect(now.retiredNodes.contains(first))
        #expect(try await w.ok("lina", "sync", "--json").json()["pushed"] == 1)
        #expect(try ReplicaStore.open(at: serverStore).status().records == 1)
        _ = await server.stop()
    }
}
