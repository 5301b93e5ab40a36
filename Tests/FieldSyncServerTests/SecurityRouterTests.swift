import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore
import FieldSyncTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

@testable import FieldSyncServer

/// Every rejection path of accounts, tokens, signatures and roles, and the happy paths beside them.
@Suite struct SecurityRouterTests {
    let dir: TemporaryDirectory
    let server: ReplicaStore
    let rima: ReplicaStore
    let omar: ReplicaStore

    init() throws {
        dir = try TemporaryDirectory("security")
        server = try ReplicaStore.create(at: dir.file("server.sqlite"), name: "central", now: 1, access: .pool)
        rima = try ReplicaStore.create(at: dir.file("rima.sqlite"), name: "rima", now: 1)
        omar = try ReplicaStore.create(at: dir.file("omar.sqlite"), name: "omar", now: 1)
    }

    var storage: SQLiteSyncStorage { SQLiteSyncStorage(replica: server) }

    func app() throws -> some ApplicationProtocol {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return try buildApplication(storage: storage, configuration: .init(host: "127.0.0.1", port: 0), logger: logger)
    }

    func token(for replica: ReplicaStore, user: String, role: Role = .documenter) async throws -> String {
        try await Enrolling.token(for: replica, on: server, user: user, role: role)
    }

    func auth(_ token: String) -> HTTPFields { [.authorization: "Bearer \(token)"] }
    func push(_ node: NodeID, _ revisions: [Revision]) -> ByteBuffer {
        ByteBuffer(bytes: PushRequest(node: node, revisions: revisions).json.canonicalBytes)
    }
    static func code(_ response: TestResponse) -> String? { body(response)?["error"]?["code"]?.stringValue }
    static func body(_ response: TestResponse) -> JSONValue? { try? JSONValue(parsing: response.body.readableBytesView) }

    @Test func noTokenOrAWrongTokenGets401() async throws {
        try await app().test(.router) { http in
            for (uri, method) in [
                ("/v1/knowledge", HTTPRequest.Method.get), ("/v1/pull", .post), ("/v1/push", .post), ("/v1/keys", .get),
                ("/v1/users", .get),
            ] {
                try await http.execute(uri: uri, method: method, body: ByteBuffer(string: "{}")) { response in
                    #expect(response.status == .unauthorized, "\(uri)")
                    #expect(Self.code(response) == "unauthorized")
                }
                try await http.execute(uri: uri, method: method, headers: auth("not-a-real-token")) { response in
                    #expect(response.status == .unauthorized, "\(uri)")
                }
            }
        }
    }

    @Test func enrolmentGivesATokenThatWorksAndIsAudited() async throws {
        let code = try Enrolling.issueCode(on: server, for: "rima", role: .documenter)
        let request = EnrolRequest(
            code: code.uppercased(), node: try rima.identity().node, publicKey: try rima.publicKey(), nonce: try rima.nonce())
        try await app().test(.router) { http in
            let token = try await http.execute(uri: "/v1/enroll", method: .post, body: ByteBuffer(bytes: request.json.canonicalBytes)) {
                response in
                #expect(response.status == .ok)
                return try EnrolResponse(json: JSONValue(parsing: response.body.readableBytesView)).token
            }
            try await http.execute(uri: "/v1/knowledge", method: .get, headers: auth(token)) { response in #expect(response.status == .ok) }
            try await http.execute(uri: "/v1/keys", method: .get, headers: auth(token)) { response in
                let directory = try KeyDirectory(json: JSONValue(parsing: response.body.readableBytesView))
                #expect(directory[try rima.identity().node]?.publicKey == (try rima.publicKey()))
                #expect(directory[try rima.identity().node]?.user == "rima")
            }
        }
        let audit = try await storage.audit(limit: 10)
        #expect(audit.contains { $0.action == "enrol" && $0.user == "rima" })
        // The server keeps only hashes: the code is marked used and no token is stored in clear.
        let stored = try String(contentsOfFile: dir.file("server.sqlite"), encoding: .isoLatin1)
        #expect(!stored.contains(code))
    }

    /// A modified client enrols with the identity as its key, whose signatures anyone could
    /// compute (R = [s]B for any s): 400 `malformed` with a JSON body, and the code stays unused
    /// for the real device.
    @Test func anEnrolmentWithAKeyOfSmallOrderIsRefusedAndTheCodeStaysUnused() async throws {
        let code = try Enrolling.issueCode(on: server, for: "rima", role: .documenter)
        let node = try rima.identity().node
        let identityKey = Data([1] + [UInt8](repeating: 0, count: 31)).base64EncodedString()
        let weak = EnrolRequest(code: code, node: node, publicKey: identityKey, nonce: try rima.nonce())
        let real = EnrolRequest(
            code: code, node: node, publicKey: try rima.publicKey(), proof: try rima.enrolmentProof(code: code), nonce: try rima.nonce())
        try await app().test(.router) { http in
            try await http.execute(uri: "/v1/enroll", method: .post, body: ByteBuffer(bytes: weak.json.canonicalBytes)) { response in
                #expect(response.status == .badRequest)
                let error = Self.body(response)?["error"]
                #expect(error?["code"]?.stringValue == "malformed")
                #expect(error?["message"]?.stringValue?.contains("small order") == true)
            }
            try await http.execute(uri: "/v1/enroll", method: .post, body: ByteBuffer(bytes: real.json.canonicalBytes)) {
                #expect($0.status == .ok)
            }
        }
    }

    /// The answer to an enrolment is lost on a bad link: the same replica asks again with the same
    /// code and a proof that it holds the key, and gets a new token; the old one stops working.
    /// Another replica with that code, or the same request without the proof, still gets 401.
    @Test func aRepeatedEnrolmentByTheSameDeviceGetsANewToken() async throws {
        let code = try Enrolling.issueCode(on: server, for: "rima", role: .documenter)
        let node = try rima.identity().node
        let proven = EnrolRequest(
            code: code, node: node, publicKey: try rima.publicKey(), proof: try rima.enrolmentProof(code: code), nonce: try rima.nonce())
        #expect(proven.hasValidProof)
        @Sendable func enrol(_ request: EnrolRequest, _ http: some TestClientProtocol) async throws -> (HTTPResponse.Status, String?) {
            try await http.execute(uri: "/v1/enroll", method: .post, body: ByteBuffer(bytes: request.json.canonicalBytes)) { response in
                (response.status, Self.body(response)?["token"]?.stringValue)
            }
        }
        try await app().test(.router) { http in
            let (firstStatus, first) = try await enrol(proven, http)
            #expect(firstStatus == .ok)
            let (againStatus, again) = try await enrol(proven, http)
            #expect(againStatus == .ok, "the same device, with its proof, within the code's lifetime")
            #expect(first != nil && again != nil && first != again)
            try await http.execute(uri: "/v1/knowledge", method: .get, headers: auth(try #require(first))) {
                #expect($0.status == .unauthorized)
            }
            try await http.execute(uri: "/v1/knowledge", method: .get, headers: auth(try #require(again))) { #expect($0.status == .ok) }
            // Without the proof, with a proof by another key, or from another replica: refused.
            var unproven = proven
            unproven.proof = nil
            var forged = proven
            forged.proof = try omar.enrolmentProof(code: code)
            let other = EnrolRequest(
                code: code, node: try omar.identity().node, publicKey: try omar.publicKey(), proof: try omar.enrolmentProof(code: code),
                nonce: try omar.nonce())
            for request in [unproven, forged, other] { #expect(try await enrol(request, http).0 == .unauthorized) }
        }
        #expect(try await storage.keyDirectory().entries.count == 1, "still one device")
    }

    @Test func aReusedOrExpiredCodeIsRefused() async throws {
        let code = try Enrolling.issueCode(on: server, for: "rima", role: .documenter)
        let expired = try Enrolling.issueCode(on: server, for: "omar", role: .documenter, expiresIn: -1)
        let first = EnrolRequest(code: code, node: try rima.identity().node, publicKey: try rima.publicKey(), nonce: try rima.nonce())
        let again = EnrolRequest(code: code, node: try omar.identity().node, publicKey: try omar.publicKey(), nonce: try omar.nonce())
        let late = EnrolRequest(code: expired, node: try omar.identity().node, publicKey: try omar.publicKey(), nonce: try omar.nonce())
        try await app().test(.router) { http in
            try await http.execute(uri: "/v1/enroll", method: .post, body: ByteBuffer(bytes: first.json.canonicalBytes)) {
                #expect($0.status == .ok)
            }
            try await http.execute(uri: "/v1/enroll", method: .post, body: ByteBuffer(bytes: again.json.canonicalBytes)) { response in
                #expect(response.status == .unauthorized)
                #expect(String(buffer: response.body).contains("already used"))
            }
            try await http.execute(uri: "/v1/enroll", method: .post, body: ByteBuffer(bytes: late.json.canonicalBytes)) { response in
                #expect(response.status == .unauthorized)
                #expect(String(buffer: response.body).contains("expired"))
            }
        }
    }

    @Test func bruteForcingCodesIsRateLimited() async throws {
        let code = try Enrolling.issueCode(on: server, for: "rima", role: .documenter)
        let node = try rima.identity().node
        let key = try rima.publicKey()
        try await app().test(.router) { http in
            for _ in 0..<5 {
                let guess = EnrolRequest(code: Secrets.newEnrolmentCode(), node: node, publicKey: key, nonce: try rima.nonce())
                try await http.execute(uri: "/v1/enroll", method: .post, body: ByteBuffer(bytes: guess.json.canonicalBytes)) {
                    #expect($0.status == .unauthorized)
                }
            }
            // Even the right code is refused now, from this address.
            let right = EnrolRequest(code: code, node: node, publicKey: key, nonce: try rima.nonce())
            try await http.execute(uri: "/v1/enroll", method: .post, body: ByteBuffer(bytes: right.json.canonicalBytes)) { response in
                #expect(response.status == .tooManyRequests)
                #expect(Self.code(response) == "rate_limited")
            }
        }
        #expect(try await storage.audit(limit: 20).filter { $0.action == "enrol-failed" }.count == 5)
    }

    @Test func theAuditLogRecordsNoAddressUnlessTheOperatorOptsIn() async throws {
        let rimaToken = try await token(for: rima, user: "rima")
        try Fixtures.addIncident(rima, title: "Arrests near the bridge")
        let node = try rima.identity().node
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        for logAddresses in [false, true] {
            let app = try buildApplication(
                storage: storage, configuration: .init(host: "127.0.0.1", port: 0, logAddresses: logAddresses), logger: logger)
            try await app.test(.router) { http in
                try await http.execute(uri: "/v1/push", method: .post, headers: auth(rimaToken), body: push(node, try rima.allRevisions()))
                {
                    #expect($0.status == .ok)
                }
                try await http.execute(
                    uri: "/v1/pull", method: .post, headers: auth(rimaToken),
                    body: ByteBuffer(bytes: PullRequest(knowledge: VersionVector()).json.canonicalBytes)
                ) {
                    #expect($0.status == .ok)
                }
                let bound = NodeBinding.fresh(publicKey: try rima.publicKey())
                let guess = EnrolRequest(
                    code: Secrets.newEnrolmentCode(), node: bound.node, publicKey: try rima.publicKey(), nonce: bound.nonce)
                try await http.execute(uri: "/v1/enroll", method: .post, body: ByteBuffer(bytes: guess.json.canonicalBytes)) {
                    #expect($0.status == .unauthorized)
                }
            }
            let entries = try await storage.audit(limit: 3)
            #expect(entries.map(\.action) == ["push", "pull", "enrol-failed"])
            #expect(entries.allSatisfy { ($0.address != nil) == logAddresses }, "\(logAddresses): \(entries.map(\.address))")
        }
        // The enrolment recorded by `token(for:)` before, with addresses off, has none either.
        #expect(try await storage.audit(limit: 100).first { $0.action == "enrol" }?.address == nil)
    }

    @Test func theOpenEnrolmentRouteReadsSmallBodiesAndCountsBadOnes() async throws {
        try await app().test(.router) { http in
            let big = ByteBuffer(string: "{\"x\":\"" + String(repeating: "a", count: SyncProtocol.maximumEnrolmentBytes) + "\"}")
            try await http.execute(uri: "/v1/enroll", method: .post, body: big) { response in
                #expect(response.status == .contentTooLarge)
                #expect(Self.code(response) == "too_large")
            }
            for _ in 0..<4 {
                try await http.execute(uri: "/v1/enroll", method: .post, body: ByteBuffer(string: "{not json")) {
                    #expect($0.status == .badRequest)
                }
            }
            // Five bad bodies: the sixth attempt is refused, whatever it holds.
            try await http.execute(uri: "/v1/enroll", method: .post, body: ByteBuffer(string: "{}")) { response in
                #expect(response.status == .tooManyRequests, "\(response.status)")
            }
        }
    }

    @Test func aRevocationCommittedAfterThePushReadTheDirectoryStillKeepsItsRevisionsOut() async throws {
        _ = try await token(for: rima, user: "rima")
        let node = try rima.identity().node
        try Fixtures.addIncident(rima, title: "Pushed after the revocation")
        // The push handler read the directory (node unrevoked), then an admin revoked the device.
        let stale = try await storage.keyDirectory()
        #expect(stale[node]?.revoked == nil)
        _ = try await storage.revokeDevice(node, now: 5)
        let revisions = try rima.allRevisions()
        await #expect {
            _ = try await storage.store(
                revisions, from: [node], checked: .none, authenticate: { try stale.verify($0) },
                admit: { revision, _ in try stale.verify(revision) },
                audit: { _ in AuditEntry(time: 6, user: "rima", device: node.rawValue, action: "push", detail: "", address: nil) })
        } throws: { ($0 as? ProtocolError)?.code == .forbidden }
        #expect(try server.status().revisions == 0)
    }

    @Test func theKeyDirectoryIsSentOnlyWhenItChanged() async throws {
        let rimaToken = try await token(for: rima, user: "rima")
        try await app().test(.router) { http in
            let tag = try await http.execute(uri: "/v1/keys", method: .get, headers: auth(rimaToken)) { response in
                #expect(response.status == .ok)
                return try #require(response.headers[.eTag])
            }
            var ask = auth(rimaToken)
            ask[.ifNoneMatch] = tag
            try await http.execute(uri: "/v1/keys", method: .get, headers: ask) { response in
                #expect(response.status == .notModified)
                #expect(response.body.readableBytes == 0)
            }
            // Another device enrols: the directory changes, and so does its tag.
            _ = try await token(for: omar, user: "omar")
            try await http.execute(uri: "/v1/keys", method: .get, headers: ask) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.eTag] != tag)
                #expect(Self.body(response)?["keys"]?.arrayValue?.count == 2)
            }
        }
    }

    /// The limit's state is in the storage, so two `serve` instances over one store share it, and
    /// it forgets what the window no longer needs.
    @Test func theRateLimiterForgetsExpiredAddressesAndIsShared() async throws {
        let limiter = EnrolmentRateLimiter(cap: 64)
        let other = SQLiteSyncStorage(replica: try ReplicaStore.open(at: server.path, access: .pool))
        for _ in 0..<4 { try await limiter.recordFailure("192.0.2.1", now: 0, in: storage) }
        #expect(try await limiter.allows("192.0.2.1", now: 1, in: other))
        try await limiter.recordFailure("192.0.2.1", now: 1, in: other)
        #expect(try await !limiter.allows("192.0.2.1", now: 2, in: storage), "five failures, seen by either instance")
        for i in 0..<300 { try await limiter.recordFailure("198.51.\(i / 256).\(i % 256)", now: 1000 + Double(i), in: storage) }
        #expect(try await limiter.allows("192.0.2.1", now: 1300, in: storage), "its window has passed")
        #expect(try await storage.enrolmentFailures(from: "192.0.2.1", since: 0) == 0, "and it is forgotten")
        // A spray of addresses within one window: at most `cap` are tracked.
        var tracked = 0
        for i in 0..<300 where try await storage.enrolmentFailures(from: "198.51.\(i / 256).\(i % 256)", since: 0) > 0 { tracked += 1 }
        #expect(tracked == 64, "the most recent 64 addresses")
        #expect(try await limiter.allows("198.51.1.43", now: 1300, in: storage), "one failure does not lock an address out")
    }

    @Test func aRevokedDeviceCanNoLongerPushOrPullButItsRevisionsStay() async throws {
        let rimaToken = try await token(for: rima, user: "rima")
        let adminReplica = try ReplicaStore.create(at: dir.file("admin.sqlite"), name: "amira", now: 1)
        let adminToken = try await token(for: adminReplica, user: "amira", role: .admin)
        try Fixtures.addIncident(rima, title: "Arrests at the roundabout")
        let rimaNode = try rima.identity().node
        try await app().test(.router) { http in
            try await http.execute(uri: "/v1/push", method: .post, headers: auth(rimaToken), body: push(rimaNode, try rima.allRevisions()))
            { #expect($0.status == .ok) }
            try await http.execute(uri: "/v1/devices/\(rimaNode)/revoke", method: .post, headers: auth(rimaToken)) {
                #expect($0.status == .forbidden)
            }
            try await http.execute(uri: "/v1/devices/\(rimaNode)/revoke", method: .post, headers: auth(adminToken)) {
                #expect($0.status == .ok)
            }
            try await http.execute(
                uri: "/v1/pull", method: .post, headers: auth(rimaToken),
                body: ByteBuffer(bytes: PullRequest(knowledge: VersionVector()).json.canonicalBytes)
            ) {
                #expect($0.status == .unauthorized)
            }
        }
        #expect(try server.status().revisions == 1)
        let audit = try await storage.audit(limit: 50)
        #expect(audit.contains { $0.action == "revoke-device" && $0.user == "amira" })
    }

    @Test func revisionsOfAnUnknownNodeAreRejected() async throws {
        let omarToken = try await token(for: omar, user: "omar")
        try Fixtures.addIncident(rima, title: "Never enrolled")
        try await app().test(.router) { http in
            try await http.execute(
                uri: "/v1/push", method: .post, headers: auth(omarToken), body: push(try omar.identity().node, try rima.allRevisions())
            ) { response in
                #expect(response.status == .unprocessableContent)
                #expect(Self.code(response) == "unknown_node")
                let body = String(buffer: response.body)
                #expect(body.contains("has no registered key"))
            }
        }
        #expect(try server.status().revisions == 0)
    }

    @Test func oneChangedByteOrAMissingSignatureIsRejected() async throws {
        let rimaToken = try await token(for: rima, user: "rima")
        try Fixtures.addIncident(rima, title: "Executions at the farm", [.set(path: "casualties.killed", value: 4)])
        let original = try rima.allRevisions()[0]
        var altered = original
        altered.operations = original.operations.map { op in
            if case .set("casualties.killed", _) = op { return .set(path: "casualties.killed", value: 5) }
            return op
        }
        var unsigned = original
        unsigned.signature = nil
        let node = try rima.identity().node
        let bad = [altered, unsigned]
        try await app().test(.router) { http in
            for revision in bad {
                try await http.execute(uri: "/v1/push", method: .post, headers: auth(rimaToken), body: push(node, [revision])) { response in
                    #expect(response.status == .unprocessableContent)
                    #expect(Self.code(response) == "bad_signature")
                }
            }
            try await http.execute(uri: "/v1/push", method: .post, headers: auth(rimaToken), body: push(node, [original])) {
                #expect($0.status == .ok)
            }
        }
        #expect(try server.records().first?.value(at: "casualties.killed") == 4)
    }

    @Test func relayedRevisionsAreAcceptedWhenTheirSignaturesVerify() async throws {
        _ = try await token(for: rima, user: "rima")
        let omarToken = try await token(for: omar, user: "omar")
        try Fixtures.addIncident(rima, title: "Looting in the market")
        // Omar received Rima's work by bundle and relays it with his own.
        _ = try omar.receiveVerified(
            try rima.allRevisions(), learning: [KeyEntry(node: try rima.identity().node, publicKey: try rima.publicKey())], now: 2)
        try Fixtures.addIncident(omar, title: "Omar's own incident")
        try await app().test(.router) { http in
            try await http.execute(
                uri: "/v1/push", method: .post, headers: auth(omarToken), body: push(try omar.identity().node, try omar.allRevisions())
            ) { response in
                #expect(response.status == .ok)
                let accepted = try PushResponse(json: JSONValue(parsing: response.body.readableBytesView)).accepted
                #expect(accepted == 2)
            }
        }
    }

    /// A modified client signs with a documenter's own key whatever context it likes: the server
    /// takes every such revision as a candidate, and only an admin's resolution ends the conflict
    /// (#13, sections 1 and 2).
    @Test func onlyAnAdminsResolutionEndsAConflict() async throws {
        let admin = try ReplicaStore.create(at: dir.file("admin.sqlite"), name: "amira", now: 1)
        let lina = try ReplicaStore.create(at: dir.file("lina.sqlite"), name: "lina", now: 1)
        let rimaToken = try await token(for: rima, user: "rima")
        let omarToken = try await token(for: omar, user: "omar")
        let linaToken = try await token(for: lina, user: "lina")
        let adminToken = try await token(for: admin, user: "amira", role: .admin)
        let id = try Fixtures.addIncident(rima, title: "Killings in the village", [.set(path: "casualties.killed", value: 10)])
        let keys = try [rima, omar, admin, lina].map { KeyEntry(node: try $0.identity().node, publicKey: try $0.publicKey()) }
        _ = try omar.receiveVerified(try rima.allRevisions(), learning: keys, now: 2)
        try Fixtures.edit(rima, id, [.set(path: "casualties.killed", value: 12)])
        try Fixtures.edit(omar, id, [.set(path: "casualties.killed", value: 15)])
        let rimaEdit = try #require(try rima.allRevisions().last)
        let linaNode = try lina.identity().node
        // Lina has seen only Rima's 12 and writes Omar's 15: the current values would agree.
        let agreeing = try lina.sign(
            Revision(
                dot: Dot(node: linaNode, counter: 1), record: id, kind: .put, operations: [.set(path: "casualties.killed", value: 15)],
                context: VersionVector([rimaEdit.dot.node: 2]), author: "lina", time: 1_741_340_200_000))
        try await app().test(.router) { http in
            try await http.execute(
                uri: "/v1/push", method: .post, headers: auth(rimaToken), body: push(try rima.identity().node, try rima.allRevisions())
            ) { #expect($0.status == .ok) }
            try await http.execute(
                uri: "/v1/push", method: .post, headers: auth(omarToken), body: push(try omar.identity().node, try omar.allRevisions())
            ) { #expect($0.status == .ok) }
            try await http.execute(uri: "/v1/push", method: .post, headers: auth(linaToken), body: push(linaNode, [agreeing])) {
                #expect($0.status == .ok)
            }
            let afterLina = try #require(try server.record(id))
            #expect(afterLina.conflicts.map(\.path) == ["casualties.killed"])
            #expect(afterLina.candidates(at: "casualties.killed").map(\.value) == [15, 15])
            // Omar covers both candidates with his own key: accepted (never a 403), and one more candidate.
            _ = try omar.receiveVerified(try rima.allRevisions() + [agreeing], learning: keys, now: 3)
            try Fixtures.edit(omar, id, [.set(path: "casualties.killed", value: 15)], now: 1_741_340_300_000)
            let covering = try #require(try omar.allRevisions().last)
            try await http.execute(
                uri: "/v1/push", method: .post, headers: auth(omarToken), body: push(try omar.identity().node, [covering])
            ) { #expect($0.status == .ok) }
            let afterOmar = try #require(try server.record(id))
            #expect(afterOmar.candidates(at: "casualties.killed").map(\.dot) == [covering.dot])
            #expect(afterOmar.isConflicted(at: "casualties.killed"), "a documenter's revision ends no conflict, whatever its context")
            #expect(try await !storage.audit(limit: 50).contains { $0.action == "push+resolve" })
            // The admin's resolution covers every dispute and ends it.
            _ = try admin.receiveVerified(try server.allRevisions(), learning: keys, now: 4)
            try Fixtures.edit(admin, id, [.set(path: "casualties.killed", value: 14)], now: 1_741_340_400_000)
            let adminResolution = try #require(try admin.allRevisions().last)
            try await http.execute(
                uri: "/v1/push", method: .post, headers: auth(adminToken), body: push(try admin.identity().node, [adminResolution])
            ) { #expect($0.status == .ok) }
        }
        #expect(try server.record(id)?.conflicts.isEmpty == true)
        #expect(try server.record(id)?.value(at: "casualties.killed") == 14)
        #expect(try await storage.audit(limit: 50).contains { $0.action == "push+resolve" && $0.user == "amira" })
    }

    /// Two deletes, each covering one of two concurrent edits, leave the record visible and in a
    /// delete-against-edit conflict, until an admin chooses.
    @Test func deletesByDocumentersDoNotEndADeleteAgainstEdit() async throws {
        let lina = try ReplicaStore.create(at: dir.file("lina.sqlite"), name: "lina", now: 1)
        let tokens = [
            try await token(for: rima, user: "rima"), try await token(for: omar, user: "omar"), try await token(for: lina, user: "lina"),
        ]
        let id = try Fixtures.addIncident(rima, title: "Detentions at the school")
        let keys = try [rima, omar, lina].map { KeyEntry(node: try $0.identity().node, publicKey: try $0.publicKey()) }
        _ = try omar.receiveVerified(try rima.allRevisions(), learning: keys, now: 2)
        try Fixtures.edit(rima, id, [.set(path: "narrative", value: "Rima's account")])
        try Fixtures.edit(omar, id, [.set(path: "narrative", value: "Omar's account")])
        let linaNode = try lina.identity().node
        let rimaNode = try rima.identity().node
        let omarNode = try omar.identity().node
        let deletes = try [
            lina.sign(
                Revision(
                    dot: Dot(node: linaNode, counter: 1), record: id, kind: .delete, operations: [],
                    context: VersionVector([rimaNode: 2]), author: "lina", time: 1_741_340_200_000)),
            lina.sign(
                Revision(
                    dot: Dot(node: linaNode, counter: 2), record: id, kind: .delete, operations: [],
                    context: VersionVector([rimaNode: 1, omarNode: 1, linaNode: 1]), author: "lina", time: 1_741_340_200_001)),
        ]
        try await app().test(.router) { http in
            try await http.execute(uri: "/v1/push", method: .post, headers: auth(tokens[0]), body: push(rimaNode, try rima.allRevisions()))
            { #expect($0.status == .ok) }
            try await http.execute(uri: "/v1/push", method: .post, headers: auth(tokens[1]), body: push(omarNode, try omar.allRevisions()))
            { #expect($0.status == .ok) }
            try await http.execute(uri: "/v1/push", method: .post, headers: auth(tokens[2]), body: push(linaNode, deletes)) {
                #expect($0.status == .ok)
            }
        }
        let state = try #require(try server.record(id))
        #expect(state.candidates(at: "deleted").allSatisfy { $0.value == .bool(true) })
        #expect(!state.isDeleted, "the record stays visible while the delete is disputed")
        #expect(Set(state.conflicts.map(\.path)) == ["deleted", "narrative"])
    }

    /// #13 section 3: node ids are made from the device's key, so no one can enrol or register a
    /// colleague's node id, whatever nonce they try.
    @Test func nobodyCanSquatAnotherDevicesNodeID() async throws {
        let omarToken = try await token(for: omar, user: "omar")
        let rimaNode = try rima.identity().node
        let code = try Enrolling.issueCode(on: server, for: "lina", role: .documenter)
        let forgedNonce = try #require(try rima.nonce())
        try await app().test(.router) { http in
            // Omar registers Rima's node id for his own device: his key does not derive it.
            let squat = ByteBuffer(
                bytes: JSONValue.object(["protocol": 2, "node": .string(rimaNode.rawValue), "nonce": .string(forgedNonce)]).canonicalBytes)
            try await http.execute(uri: "/v1/nodes", method: .post, headers: auth(omarToken), body: squat) { response in
                #expect(response.status == .forbidden)
                #expect(String(buffer: response.body).contains("is not made from this device's key"))
            }
            // Nor with no nonce at all, nor with an id that is not derived from any key.
            let bare = ByteBuffer(bytes: JSONValue.object(["protocol": 2, "node": .string(NodeID.random().rawValue)]).canonicalBytes)
            try await http.execute(uri: "/v1/nodes", method: .post, headers: auth(omarToken), body: bare) {
                #expect($0.status == .forbidden)
            }
            // Enrolling under Rima's node id with another key fails before the code is used.
            let stranger = DeviceKey.generate()
            let enrol = EnrolRequest(code: code, node: rimaNode, publicKey: stranger.publicKeyBase64, nonce: forgedNonce)
            try await http.execute(uri: "/v1/enroll", method: .post, body: ByteBuffer(bytes: enrol.json.canonicalBytes)) {
                #expect($0.status == .forbidden)
            }
        }
        #expect(try await storage.devices().map(\.node) == [try omar.identity().node])
        // Rima's own enrolment, with her key, still works.
        let bound = EnrolRequest(code: code, node: rimaNode, publicKey: try rima.publicKey(), nonce: forgedNonce)
        try await app().test(.router) { http in
            try await http.execute(uri: "/v1/enroll", method: .post, body: ByteBuffer(bytes: bound.json.canonicalBytes)) { response in
                #expect(response.status == .ok)
                let answer = try EnrolResponse(json: JSONValue(parsing: response.body.readableBytesView))
                #expect(answer.certificate?.node == rimaNode)
                #expect(answer.certificate?.isIssued(by: try #require(answer.serverKey)) == true)
                #expect(answer.serverKey == (try server.publicKey()))
            }
        }
    }

    /// Pull pages carry the certificates of their authors, signed with the key `/v1/health` names.
    @Test func pullPagesCarryTheirAuthorsCertificates() async throws {
        let rimaToken = try await token(for: rima, user: "rima")
        let omarToken = try await token(for: omar, user: "omar")
        _ = try Fixtures.addIncident(rima, title: "Shelling")
        try await app().test(.router) { http in
            try await http.execute(
                uri: "/v1/push", method: .post, headers: auth(rimaToken), body: push(try rima.identity().node, try rima.allRevisions())
            ) { #expect($0.status == .ok) }
            var serverKey: String?
            try await http.execute(uri: "/v1/health", method: .get) { serverKey = Self.body($0)?["server_key"]?.stringValue }
            let key = try #require(serverKey)
            try await http.execute(
                uri: "/v1/pull", method: .post, headers: auth(omarToken),
                body: ByteBuffer(bytes: PullRequest(knowledge: VersionVector()).json.canonicalBytes)
            ) { response in
                let page = try PullResponse(json: JSONValue(parsing: response.body.readableBytesView))
                #expect(page.revisions.count == 1)
                #expect(page.certificates.map(\.node) == [try rima.identity().node])
                #expect(page.certificates.allSatisfy { $0.isIssued(by: key) && $0.user == "rima" && $0.role == .documenter })
            }
        }
    }

    @Test func adminEndpointsRefuseDocumenters() async throws {
        let rimaToken = try await token(for: rima, user: "rima")
        let admin = try ReplicaStore.create(at: dir.file("admin.sqlite"), name: "amira", now: 1)
        let adminToken = try await token(for: admin, user: "amira", role: .admin)
        let add = ByteBuffer(bytes: AddUserRequest(name: "lina", role: .documenter).json.canonicalBytes)
        try await app().test(.router) { http in
            for (uri, method) in [
                ("/v1/users", HTTPRequest.Method.get), ("/v1/devices", .get), ("/v1/audit", .get), ("/v1/users/amira/revoke", .post),
            ] {
                try await http.execute(uri: uri, method: method, headers: auth(rimaToken)) { response in
                    #expect(response.status == .forbidden, "\(uri)")
                    #expect(Self.code(response) == "forbidden")
                }
            }
            try await http.execute(uri: "/v1/users", method: .post, headers: auth(adminToken), body: add) { response in
                #expect(response.status == .ok)
                let code = try JSONValue(parsing: response.body.readableBytesView)["code"]?.stringValue
                #expect(code?.count == 47)
            }
            try await http.execute(uri: "/v1/users", method: .get, headers: auth(adminToken)) { response in
                let users = try JSONValue(parsing: response.body.readableBytesView)["users"]?.arrayValue ?? []
                #expect(users.compactMap { $0["name"]?.stringValue } == ["amira", "lina", "rima"])
            }
            try await http.execute(uri: "/v1/users/nobody/revoke", method: .post, headers: auth(adminToken)) {
                #expect($0.status == .notFound)
            }
        }
    }

    @Test func revokingADeviceRevokesEveryNodeIDItRegistered() async throws {
        let rimaToken = try await token(for: rima, user: "rima")
        let admin = try ReplicaStore.create(at: dir.file("admin.sqlite"), name: "amira", now: 1)
        let adminToken = try await token(for: admin, user: "amira", role: .admin)
        let oldNode = try rima.identity().node
        let newNode = try rima.retireNodeID(reason: "restored", now: 2)
        let register = ByteBuffer(
            bytes: JSONValue.object([
                "protocol": 2, "node": .string(newNode.rawValue), "nonce": .string(try #require(try rima.nodeNonce(newNode))),
            ]).canonicalBytes)
        try await app().test(.router) { http in
            try await http.execute(uri: "/v1/nodes", method: .post, headers: auth(rimaToken), body: register) { #expect($0.status == .ok) }
            try await http.execute(uri: "/v1/devices/\(oldNode)/revoke", method: .post, headers: auth(adminToken)) {
                #expect($0.status == .ok)
            }
            try await http.execute(uri: "/v1/knowledge", method: .get, headers: auth(rimaToken)) { #expect($0.status == .unauthorized) }
            try await http.execute(uri: "/v1/audit?limit=abc", method: .get, headers: auth(adminToken)) {
                #expect($0.status == .badRequest)
            }
            try await http.execute(uri: "/v1/knowledge", method: .get, headers: [.authorization: "bearer \(adminToken)"]) {
                #expect($0.status == .ok)
            }
        }
        let directory = try await storage.keyDirectory()
        #expect(directory[oldNode]?.revoked != nil)
        #expect(directory[newNode]?.revoked != nil)
        #expect(directory[newNode]?.publicKey == (try rima.publicKey()))
    }

    @Test func aDeviceRegistersAtMostSixteenNodeIDs() async throws {
        let rimaToken = try await token(for: rima, user: "rima")
        try await app().test(.router) { http in
            // The enrolled node id counts: 15 more are allowed, the 16th more is refused with the reason.
            for i in 0..<(SyncProtocol.maximumNodesPerDevice - 1) {
                let bound = NodeBinding.fresh(publicKey: try rima.publicKey())
                let body = ByteBuffer(
                    bytes: JSONValue.object(["protocol": 2, "node": .string(bound.node.rawValue), "nonce": .string(bound.nonce)])
                        .canonicalBytes)
                try await http.execute(uri: "/v1/nodes", method: .post, headers: auth(rimaToken), body: body) {
                    #expect($0.status == .ok, "\(i)")
                }
            }
            let bound = NodeBinding.fresh(publicKey: try rima.publicKey())
            let body = ByteBuffer(
                bytes: JSONValue.object(["protocol": 2, "node": .string(bound.node.rawValue), "nonce": .string(bound.nonce)]).canonicalBytes
            )
            try await http.execute(uri: "/v1/nodes", method: .post, headers: auth(rimaToken), body: body) { response in
                #expect(response.status == .forbidden)
                let message = (try? JSONValue(parsing: response.body.readableBytesView))?["error"]?["message"]?.stringValue ?? ""
                #expect(message.contains("16 node ids"), "\(message)")
            }
        }
        #expect(try await storage.keyDirectory().entries.count == SyncProtocol.maximumNodesPerDevice)
    }

    @Test func aKeyHasOneSpellingOnly() throws {
        let key = try rima.publicKey()
        #expect(SignatureCheck.isPublicKey(key))
        // The same 32 bytes with other (ignored) padding bits, which Foundation decodes alike.
        var spelled = Array(key)
        let last = spelled.count - 2
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        let index = alphabet.firstIndex(of: spelled[last])!
        spelled[last] = alphabet[(index & ~3) | ((index + 1) & 3)]
        let other = String(spelled)
        #expect(other != key)
        #expect(Data(base64Encoded: other) == Data(base64Encoded: key), "both spellings decode to the same key")
        #expect(!SignatureCheck.isPublicKey(other), "only the canonical spelling is a key")
        #expect {
            try KeyEntry(json: ["node": .string(try rima.identity().node.rawValue), "public_key": .string(other)], at: "keys[0]")
        } throws: {
            ($0 as? ProtocolError)?.code == .malformed
        }
    }

    /// Forks through the router (issue 12), with a modified client that signs with its own key.
    @Test func theForkedNodesOwnPushIsRefusedWhateverNodeTheBodyNamesAndARelayedOneIsKeptAside() async throws {
        let rimaToken = try await token(for: rima, user: "rima")
        let omarToken = try await token(for: omar, user: "omar")
        // Rima's laptop writes 1; a copy of her file writes its own 1'.
        try FileManager.default.copyItem(atPath: rima.path, toPath: dir.file("copy.sqlite"))
        _ = try Fixtures.addIncident(rima, title: "Original")
        let copy = try ReplicaStore.open(at: dir.file("copy.sqlite"))
        _ = try Fixtures.addIncident(copy, title: "Written by the copy", now: 1_741_340_000_500)
        let original = try rima.allRevisions()[0]
        let forked = try copy.allRevisions()[0]
        #expect(original.dot == forked.dot)
        let node = original.dot.node
        try await app().test(.router) { http in
            try await http.execute(uri: "/v1/push", method: .post, headers: auth(rimaToken), body: push(node, [original])) { response in
                #expect(response.status == .ok)
            }
            // The copy pushes with Rima's token: 409 fork, also when it names Omar's node in the body.
            for claimed in [node, try omar.identity().node] {
                try await http.execute(uri: "/v1/push", method: .post, headers: auth(rimaToken), body: push(claimed, [forked])) {
                    response in
                    #expect(response.status == .conflict)
                    #expect(Self.body(response)?["error"]?["code"] == "fork")
                }
            }
            // The probe shows where the histories part.
            try await http.execute(uri: "/v1/knowledge?node=\(node.rawValue)&counter=1", method: .get, headers: auth(rimaToken)) {
                response in
                let chain = Self.body(response)?["chain"]
                #expect(chain?["counter"] == 1)
                #expect(chain?["hash"]?.stringValue == RevisionChain.hash(ofText: original.json.canonicalText))
            }
            for bad in ["node=\(node.rawValue)", "counter=1", "node=XYZ&counter=1", "node=\(node.rawValue)&counter=-1"] {
                try await http.execute(uri: "/v1/knowledge?\(bad)", method: .get, headers: auth(rimaToken)) { response in
                    #expect(response.status == .badRequest, "\(bad)")
                    #expect(Self.body(response)?["error"]?["code"] == "malformed")
                }
            }
            // Omar relays the copy's revision (from a bundle): kept aside, listed, nothing refused.
            try await http.execute(uri: "/v1/push", method: .post, headers: auth(omarToken), body: push(try omar.identity().node, [forked]))
            { response in
                #expect(response.status == .ok)
                #expect(Self.body(response)?["set_aside"] == .array([.string(forked.dot.description)]))
                #expect(Self.body(response)?["accepted"] == 0)
            }
            // An unsigned alteration relayed the same way is a forgery: refused, and not kept.
            var altered = forked
            altered.operations = [.set(path: "title", value: "Forged")]
            try await http.execute(
                uri: "/v1/push", method: .post, headers: auth(omarToken), body: push(try omar.identity().node, [altered])
            ) { response in
                #expect(response.status == .unprocessableContent)
                #expect(Self.body(response)?["error"]?["code"] == "bad_signature")
            }
        }
        #expect(try server.forkedRevisions().map(\.dot) == [forked.dot])
        #expect(try server.record(original.record)?.value(at: "title") == "Original")
    }
}

extension ReplicaStore {
    /// The nonce binding the replica's current node id to its key.
    func nonce() throws -> String? { try nodeNonce(try identity().node) }
}
