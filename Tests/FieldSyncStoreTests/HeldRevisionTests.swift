import FieldSyncCore
import FieldSyncProtocol
import FieldSyncTestSupport
import Foundation
import Testing

@testable import FieldSyncStore

/// Held revisions on an enrolled replica (spec 12.4): what a bundle brings that the central node
/// would refuse is held, and releasing never fails a sync, whatever became of what it needs.
@Suite struct HeldRevisionTests {
    let dir: TemporaryDirectory
    init() throws { dir = try TemporaryDirectory("held") }

    /// A replica pinned to a central node key, and two writers with certificates by that key.
    func world() throws -> (replica: ReplicaStore, server: DeviceKey, a: ReplicaStore, b: ReplicaStore) {
        let server = DeviceKey.generate()
        let replica = try ReplicaStore.create(at: dir.file("r.sqlite"), name: "r", now: 1)
        try replica.saveEnrolment(
            Enrolment(server: "http://127.0.0.1:1", token: "t", user: "r", role: .admin, serverKey: server.publicKeyBase64), now: 1)
        let a = try ReplicaStore.create(at: dir.file("a.sqlite"), name: "a", now: 1)
        let b = try ReplicaStore.create(at: dir.file("b.sqlite"), name: "b", now: 1)
        return (replica, server, a, b)
    }

    func certified(_ store: ReplicaStore, by server: DeviceKey) throws -> KeyEntry {
        KeyEntry(
            certificate: try NodeCertificate.issue(
                node: try store.identity().node, publicKey: try store.publicKey(), user: try store.identity().name, role: .documenter,
                issued: 1,
                by: server))
    }

    @Test func aHeldRevisionWhoseDependencyWasReplacedStaysHeldAndReleaseDoesNotFail() throws {
        let (replica, server, a, b) = try world()
        let id = try Fixtures.addIncident(a, title: "Raid")
        _ = try b.receiveVerified(try a.allRevisions(), learning: [try certified(a, by: server)], now: 2)
        try Fixtures.edit(b, id, [.set(path: "narrative", value: "b's account")])
        // A bundle with A's revision (certified) and B's (no certificate): B's is held.
        let outcome = try replica.receiveVerified(
            try b.allRevisions(),
            learning: [try certified(a, by: server), KeyEntry(node: try b.identity().node, publicKey: try b.publicKey())],
            unconfirmed: true, holding: true, now: 3)
        #expect(outcome.accepted == 1)
        #expect(outcome.held.map(\.dot) == [Dot(node: try b.identity().node, counter: 1)])
        #expect(outcome.held.first?.reason.contains("not vouched for") == true)
        #expect(try replica.record(id)?.value(at: "narrative") == nil, "a held revision is not merged")
        // The central node holds another history of A: A's revision here is replaced, and B's
        // held revision now needs something the log no longer has.
        try replica.adoptServerHistory(of: try a.identity().node, from: 1, now: 4)
        try replica.rememberKeys([try certified(b, by: server)], from: .centralNode(serverKey: server.publicKeyBase64))
        #expect(try replica.releaseHeld(now: 5) == 0)
        #expect(try replica.heldRevisionCount() == 1, "still held, and the release did not throw")
        // Once A's revision is back (pulled from the central node), B's is released.
        _ = try replica.receiveVerified(
            try a.allRevisions(), learning: [try certified(a, by: server)], from: .centralNode(serverKey: nil), now: 6)
        #expect(try replica.releaseHeld(now: 7) == 1)
        #expect(try replica.heldRevisionCount() == 0)
        #expect(try replica.record(id)?.value(at: "narrative") == "b's account")
    }

    /// A revision built on a held one is held with it, unless the schema refuses it: a modified
    /// client's revision, signed with its own key, is refused whole and never held.
    @Test func aRevisionBuiltOnAHeldOneIsHeldWithItUnlessTheSchemaRefusesIt() throws {
        let (replica, server, a, b) = try world()
        let id = try Fixtures.addIncident(a, title: "Raid")
        _ = try b.receiveVerified(try a.allRevisions(), learning: [try certified(a, by: server)], now: 2)
        try Fixtures.edit(b, id, [.set(path: "narrative", value: "b's account")])
        let keys = [try certified(a, by: server), KeyEntry(node: try b.identity().node, publicKey: try b.publicKey())]
        _ = try replica.receiveVerified(try b.allRevisions(), learning: keys, unconfirmed: true, holding: true, now: 3)
        #expect(try replica.heldRevisionCount() == 1)
        let node = try b.identity().node
        let first = try #require(try b.allRevisions().last)
        func next(_ operations: [FieldOperation]) throws -> Revision {
            try b.sign(
                Revision(
                    dot: Dot(node: node, counter: 2), record: id, operations: operations, context: VersionVector([node: 1]),
                    author: "b", time: first.time + 1, previous: RevisionChain.hash(ofText: first.canonicalForms.text)))
        }
        let bad = try next([.set(path: "location.lat", value: 123.5)])
        #expect {
            try replica.receiveVerified([bad], learning: keys, unconfirmed: true, holding: true, now: 4)
        } throws: { ($0 as? ProtocolError)?.code == .invalidField }
        #expect(try replica.heldRevisionCount() == 1, "nothing of the refused batch is held")
        let good = try next([.set(path: "narrative", value: "b's second account")])
        let outcome = try replica.receiveVerified([good], learning: keys, unconfirmed: true, holding: true, now: 5)
        #expect(outcome.held.map(\.dot) == [Dot(node: node, counter: 2)])
        #expect(outcome.held.first?.reason.contains("which is held") == true)
        #expect(try replica.heldRevisionCount() == 2)
    }

    @Test func atMostFourContentsAreHeldPerDot() throws {
        let (replica, _, _, b) = try world()
        let node = try b.identity().node
        var held = 0
        for i in 0..<6 {
            let revision = try b.sign(
                Revision(
                    dot: Dot(node: node, counter: 1), record: RecordID.generate(millisecondsSince1970: 1_741_340_000_000),
                    operations: [.set(path: "title", value: .string("copy \(i)"))], context: VersionVector(), author: "b", time: Int64(i)))
            held += try replica.receiveVerified(
                [revision], learning: [KeyEntry(node: node, publicKey: try b.publicKey())], holding: true, now: 2
            )
            .held.count
        }
        #expect(held == 6, "each is reported")
        #expect(try replica.heldRevisionCount() == 4, "but only four are kept")
    }
}
