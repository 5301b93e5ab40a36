import CompressNIO
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncServer
import FieldSyncStore
import FieldSyncTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// Every endpoint and every error status, in-process through the router.
@Suite struct RouterTests {
    let dir: TemporaryDirectory
    let server: ReplicaStore
    let client: ReplicaStore

    init() throws {
        dir = try TemporaryDirectory("router")
        server = try ReplicaStore.create(at: dir.file("server.sqlite"), name: "central", now: 1, access: .pool)
        client = try ReplicaStore.create(at: dir.file("client.sqlite"), name: "Rima", now: 1)
    }

    func token(for replica: ReplicaStore, user: String, role: Role = .documenter) async throws -> String {
        try await Enrolling.token(for: replica, on: server, user: user, role: role)
    }

    func auth(_ token: String) -> HTTPFields { [.authorization: "Bearer \(token)"] }

    func app() throws -> some ApplicationProtocol {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return try buildApplication(
            storage: SQLiteSyncStorage(replica: server), configuration: .init(host: "127.0.0.1", port: 0), logger: logger)
    }

    func body(_ json: JSONValue) -> ByteBuffer { ByteBuffer(bytes: json.canonicalBytes) }
    func body(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    static func json(_ response: TestResponse) throws -> JSONValue { try JSONValue(parsing: response.body.readableBytesView) }

    static func errorCode(_ response: TestResponse) throws -> String? { try json(response)["error"]?["code"]?.stringValue }

    func clientRevisions(_ count: Int) throws -> [Revision] {
        for i in 0..<count { try Fixtures.addIncident(client, title: "Incident \(i)") }
        return try client.allRevisions()
    }

    @Test func healthAndKnowledge() async throws {
        let token = try await token(for: client, user: "rima")
        try await app().test(.router) { http in
            try await http.execute(uri: "/v1/health", method: .get) { response in
                #expect(response.status == .ok)
                let status = try Self.json(response)["status"]
                #expect(status == "ok")
            }
            try await http.execute(uri: "/v1/knowledge", method: .get, headers: auth(token)) { response in
                #expect(response.status == .ok)
                let knowledge = try KnowledgeResponse(json: Self.json(response))
                #expect(knowledge.knowledge.isEmpty)
                #expect(knowledge.node == (try server.identity().node))
            }
        }
    }

    @Test func pushStoresABatchAndRePushIsHarmless() async throws {
        let revisions = try clientRevisions(3)
        let push = PushRequest(node: try client.identity().node, revisions: revisions)
        let token = try await token(for: client, user: "rima")
        try await app().test(.router) { http in
            try await http.execute(uri: "/v1/push", method: .post, headers: auth(token), body: body(push.json)) { response in
                #expect(response.status == .ok)
                let result = try PushResponse(json: Self.json(response))
                #expect(result.accepted == 3)
                #expect(result.knowledge.total == 3)
            }
            try await http.execute(uri: "/v1/push", method: .post, headers: auth(token), body: body(push.json)) { response in
                #expect(response.status == .ok)
                let result = try PushResponse(json: Self.json(response))
                #expect(result.accepted == 0)
                #expect(result.duplicates == 3)
            }
        }
        #expect(try server.status().revisions == 3)
        // Each push wrote its audit line with its batch.
        let pushes = try await SQLiteSyncStorage(replica: server).audit(limit: 100).filter { $0.action == "push" }
        #expect(
            pushes.map(\.detail) == [
                "received 3, accepted 3, duplicates 0, new conflicts 0", "received 3, accepted 0, duplicates 3, new conflicts 0",
            ])
    }

    @Test func pullPagesUntilNothingRemains() async throws {
        _ = try server.receive(try clientRevisions(5), now: 2)
        let token = try await token(for: client, user: "rima")
        try await app().test(.router) { http in
            var knowledge = VersionVector()
            var pages = 0
            var total = 0
            while true {
                let more = try await http.execute(
                    uri: "/v1/pull", method: .post, headers: auth(token), body: body(PullRequest(knowledge: knowledge, limit: 2).json)
                ) { response in
                    #expect(response.status == .ok)
                    let page = try PullResponse(json: Self.json(response))
                    #expect(page.revisions.count <= 2)
                    for r in page.revisions { knowledge.add(r.dot) }
                    total += page.revisions.count
                    return page.more
                }
                pages += 1
                if !more { break }
            }
            #expect(total == 5)
            #expect(pages == 3)
        }
    }

    @Test func pullPagesAreGzippedWhenTheClientAcceptsGzip() async throws {
        _ = try server.receive(try clientRevisions(6), now: 2)
        let token = try await token(for: client, user: "rima")
        let request = body(PullRequest(knowledge: VersionVector(), limit: 100).json)
        try await app().test(.router) { http in
            let plain = try await http.execute(uri: "/v1/pull", method: .post, headers: auth(token), body: request) { response in
                #expect(response.headers[.contentEncoding] == nil)
                return try Self.json(response)
            }
            var gzipHeaders = auth(token)
            gzipHeaders[.acceptEncoding] = "deflate, gzip;q=0.8"
            try await http.execute(uri: "/v1/pull", method: .post, headers: gzipHeaders, body: request) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentEncoding] == "gzip")
                var compressed = response.body
                #expect(compressed.readableBytes < plain.canonicalBytes.count)
                let inflated = try compressed.decompress(with: .gzip())
                #expect(try JSONValue(parsing: inflated.readableBytesView) == plain)
            }
            var refused = auth(token)
            refused[.acceptEncoding] = "gzip;q=0"
            try await http.execute(uri: "/v1/pull", method: .post, headers: refused, body: request) { response in
                #expect(response.headers[.contentEncoding] == nil)
                let uncompressed = try Self.json(response)
                #expect(uncompressed == plain)
            }
        }
    }

    @Test(arguments: [
        ("{not json", "invalid_json"),
        ("[1,2,3]", "malformed"),
        (#"{"protocol":2,"node":"0123456789abcdef","revisions":"nope"}"#, "malformed"),
        (#"{"protocol":99,"node":"0123456789abcdef","revisions":[]}"#, "unsupported_version"),
        (#"{"node":"0123456789abcdef","revisions":[]}"#, "malformed"),
        (#"{"protocol":2,"node":"XYZ","revisions":[]}"#, "malformed"),
        ("\u{FF}\u{FE}", "invalid_json"),
    ])
    func badPushBodiesGet400(body text: String, code: String) async throws {
        let token = try await token(for: client, user: "rima")
        try await app().test(.router) { http in
            try await http.execute(uri: "/v1/push", method: .post, headers: auth(token), body: body(text)) { response in
                #expect(response.status == .badRequest)
                let actual = try Self.errorCode(response)
                #expect(actual == code)
            }
        }
        #expect(try server.status().revisions == 0)
    }

    @Test func invalidUTF8Gets400() async throws {
        var bytes = ByteBuffer(string: #"{"protocol":2,"node":"0123456789abcdef","revisions":[],"x":""#)
        bytes.writeBytes([0xC3, 0x28])
        bytes.writeString("\"}")
        let buffer = bytes
        let token = try await token(for: client, user: "rima")
        try await app().test(.router) { http in
            try await http.execute(uri: "/v1/push", method: .post, headers: auth(token), body: buffer) { response in
                #expect(response.status == .badRequest)
                let code = try Self.errorCode(response)
                #expect(code == "invalid_json")
            }
        }
    }

    @Test func aCausalGapGets409AndNothingIsStored() async throws {
        let revisions = try clientRevisions(3)
        let push = PushRequest(node: try client.identity().node, revisions: [revisions[0], revisions[2]])
        let token = try await token(for: client, user: "rima")
        try await app().test(.router) { http in
            try await http.execute(uri: "/v1/push", method: .post, headers: auth(token), body: body(push.json)) { response in
                #expect(response.status == .conflict)
                let code = try Self.errorCode(response)
                #expect(code == "causal_gap")
            }
            try await http.execute(uri: "/v1/health", method: .get) { response in #expect(response.status == .ok) }
        }
        #expect(try server.status().revisions == 0)
    }

    @Test func anInvalidFieldGets422() async throws {
        var revision = try clientRevisions(1)[0]
        revision.operations.append(.set(path: "location.lat", value: 123.5))
        let push = PushRequest(node: revision.dot.node, revisions: [revision])
        let token = try await token(for: client, user: "rima")
        try await app().test(.router) { http in
            try await http.execute(uri: "/v1/push", method: .post, headers: auth(token), body: body(push.json)) { response in
                #expect(response.status == .unprocessableContent)
                let code = try Self.errorCode(response)
                #expect(code == "invalid_field")
            }
        }
        #expect(try server.status().revisions == 0)
    }

    /// A modified client signs with its own key what the schema refuses: the signature checked ahead
    /// verifies, and the transaction still refuses the batch, storing none of it.
    @Test func aSignedRevisionThatFailsTheSchemaGets422AndNothingOfItsBatchIsStored() async throws {
        let good = try clientRevisions(1)[0]
        let node = try client.identity().node
        let bad = try client.sign(
            Revision(
                dot: Dot(node: node, counter: 2), record: good.record, operations: [.set(path: "location.lat", value: 123.5)],
                context: VersionVector([node: 1]), author: good.author, time: good.time + 1,
                previous: RevisionChain.hash(ofText: good.canonicalForms.text)))
        let push = PushRequest(node: node, revisions: [good, bad])
        let token = try await token(for: client, user: "rima")
        try await app().test(.router) { http in
            try await http.execute(uri: "/v1/push", method: .post, headers: auth(token), body: body(push.json)) { response in
                #expect(response.status == .unprocessableContent)
                #expect(try Self.errorCode(response) == "invalid_field")
                let message = try Self.json(response)["error"]?["message"]?.stringValue ?? ""
                #expect(message.contains("\(node):2"))
            }
        }
        #expect(try server.status().revisions == 0)
    }

    @Test func tooManyRevisionsOrBytesGet413() async throws {
        let one = try clientRevisions(1)[0].json
        let many = JSONValue.object([
            "protocol": 2, "node": "0123456789abcdef",
            "revisions": .array(Array(repeating: one, count: SyncProtocol.maximumBatchRevisions + 1)),
        ])
        let huge = ByteBuffer(repeating: UInt8(ascii: " "), count: SyncProtocol.maximumRequestBytes + 10)
        let token = try await token(for: client, user: "rima")
        try await app().test(.router) { http in
            try await http.execute(uri: "/v1/push", method: .post, headers: auth(token), body: body(many)) { response in
                #expect(response.status == .contentTooLarge)
                let code = try Self.errorCode(response)
                #expect(code == "too_large")
            }
            try await http.execute(uri: "/v1/push", method: .post, headers: auth(token), body: huge) { response in
                #expect(response.status == .contentTooLarge)
                let code = try Self.errorCode(response)
                #expect(code == "too_large")
            }
        }
        #expect(try server.status().revisions == 0)
    }

    @Test func badPullRequestsGet400() async throws {
        let token = try await token(for: client, user: "rima")
        try await app().test(.router) { http in
            try await http.execute(
                uri: "/v1/pull", method: .post, headers: auth(token), body: body(#"{"protocol":2,"knowledge":{"zz":1}}"#)
            ) { response in
                #expect(response.status == .badRequest)
            }
            try await http.execute(
                uri: "/v1/pull", method: .post, headers: auth(token), body: body(#"{"protocol":2,"knowledge":{},"limit":0}"#)
            ) { response in
                #expect(response.status == .badRequest)
            }
        }
    }

    @Test func unknownRoutesGet404WithAJSONBody() async throws {
        let token = try await token(for: client, user: "rima")
        try await app().test(.router) { http in
            try await http.execute(uri: "/v2/push", method: .post, headers: auth(token), body: body("{}")) { response in
                #expect(response.status == .notFound)
                let code = try Self.errorCode(response)
                #expect(code == "not_found")
            }
        }
    }

    @Test func deeplyNestedBodiesGet400AndTheStoreIsUnchanged() async throws {
        _ = try server.receive(try clientRevisions(2), now: 2)
        let before = try Fixtures.canonicalState(server)
        let nested = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let token = try await token(for: client, user: "rima")
        try await app().test(.router) { http in
            for uri in ["/v1/push", "/v1/pull"] {
                try await http.execute(uri: uri, method: .post, headers: auth(token), body: body(nested)) { response in
                    #expect(response.status == .badRequest)
                    let code = try Self.errorCode(response)
                    #expect(code == "invalid_json")
                }
            }
        }
        #expect(try Fixtures.canonicalState(server) == before)
        #expect(try server.status().revisions == 2)
    }
}
