import FieldSyncCore
import FieldSyncProtocol
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL

/// How to run the central node.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// PEM files of the certificate chain and private key; HTTPS when set.
    public var tlsCertificatePath: String?
    public var tlsKeyPath: String?
    /// Whether audit entries record the client's address (`serve --log-addresses`). Off by default:
    /// a seized server must not show who synced from where (docs/SECURITY.md).
    public var logAddresses: Bool
    /// Where attachment bytes go and their limits; nil: the node refuses attachments (404).
    public var attachments: AttachmentConfiguration?

    public init(
        host: String = "127.0.0.1", port: Int = 8080, tlsCertificatePath: String? = nil, tlsKeyPath: String? = nil,
        logAddresses: Bool = false, attachments: AttachmentConfiguration? = nil
    ) {
        self.attachments = attachments
        self.host = host
        self.port = port
        self.tlsCertificatePath = tlsCertificatePath
        self.tlsKeyPath = tlsKeyPath
        self.logAddresses = logAddresses
    }

    /// The TLS configuration for `--tls-cert`/`--tls-key`, or nil for plain HTTP.
    public func tlsConfiguration() throws -> TLSConfiguration? {
        guard let certificate = tlsCertificatePath, let key = tlsKeyPath else { return nil }
        let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
        guard !chain.isEmpty else { throw TLSSetupError("no certificate in \(certificate)") }
        return TLSConfiguration.makeServerConfiguration(
            certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
    }
}

/// A certificate or key file that cannot be used for HTTPS.
public struct TLSSetupError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Builds the central node's router. Health and enrolment are open; every other route needs the
/// bearer token of an enrolled device. Tests drive it in-process with `app.test(.router)`.
///
/// `logAddresses`: whether audit entries record client addresses (off by default; the enrolment rate
/// limit keeps failing addresses in the storage for its window either way).
public func buildRouter<Storage: SyncStorage & AccountStorage & AttachmentStorage>(
    storage: Storage, attachments: AttachmentConfiguration? = nil, logger: Logger, logAddresses: Bool = false
) -> Router<SyncRequestContext> {
    let router = Router(context: SyncRequestContext.self)
    router.add(middleware: JSONErrorMiddleware())
    let routes = SyncRoutes(
        storage: storage, logger: logger, limiter: EnrolmentRateLimiter(), logAddresses: logAddresses, sequencer: PushSequencer())
    // The signing key is public: a documenter may compare its fingerprint before sending a code.
    router.get("/v1/health") { _, _ in
        JSONResponse.make(["status": "ok", "protocol": .int(SyncProtocol.version), "server_key": .string(try await storage.serverKey())])
    }
    router.post("/v1/enroll") { request, context in try await routes.enrol(request, context) }
    let authenticated = router.group("/v1").add(middleware: BearerAuthMiddleware(storage: storage))
    authenticated.get("knowledge") { request, context in try await routes.knowledge(request, context) }
    authenticated.post("push") { request, context in try await routes.push(request, context) }
    authenticated.post("pull") { request, context in try await routes.pull(request, context) }
    authenticated.get("keys") { request, _ in
        // An entity tag over the directory's canonical bytes: a replica that learned this directory
        // gets 304 and no body, however many nodes it lists (spec 8.6).
        let tag = try await storage.keyDirectoryTag()
        // Weak comparison (RFC 9110): a compressing proxy may have turned the tag into W/"…".
        let asked = request.headers[values: .ifNoneMatch].flatMap { $0.split(separator: ",") }.map { item -> String in
            let trimmed = item.trimmingCharacters(in: .whitespaces)
            return trimmed.hasPrefix("W/") ? String(trimmed.dropFirst(2)) : trimmed
        }
        if asked.contains(tag) || asked.contains("*") {
            return Response(status: .notModified, headers: [.eTag: tag])
        }
        var response = JSONResponse.make(bytes: try await storage.certifiedKeyDirectory().json.canonicalBytes, compressingFor: request)
        response.headers[.eTag] = tag
        return response
    }
    authenticated.post("nodes") { request, context in try await routes.registerNode(request, context) }
    AdminRoutes(storage: storage, logAddresses: logAddresses).add(to: authenticated)
    if let attachments { AttachmentRoutes(storage: storage, configuration: attachments, logAddresses: logAddresses).add(to: authenticated) }
    return router
}

/// Builds the central node. `onServerRunning` receives the bound port (useful with port 0).
public func buildApplication<Storage: SyncStorage & AccountStorage & AttachmentStorage>(
    storage: Storage, configuration: ServerConfiguration, logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) throws -> some ApplicationProtocol {
    let server: HTTPServerBuilder = try configuration.tlsConfiguration().map { try .tls(.http1(), tlsConfiguration: $0) } ?? .http1()
    return Application(
        router: buildRouter(
            storage: storage, attachments: configuration.attachments, logger: logger, logAddresses: configuration.logAddresses),
        server: server,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "fieldsync"),
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.port) },
        logger: logger)
}

/// The handlers behind the sync and enrolment routes.
struct SyncRoutes<Storage: SyncStorage & AccountStorage>: Sendable {
    let storage: Storage
    let logger: Logger
    let limiter: EnrolmentRateLimiter
    let logAddresses: Bool
    /// Orders the batches of pipelined pushes (spec 8.3.1).
    let sequencer: PushSequencer

    /// The client's address for an audit entry, or nil unless the operator opted in.
    func auditAddress(_ context: SyncRequestContext) -> String? { logAddresses ? context.sourceAddress : nil }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// The server's knowledge; with `?node=N&counter=C`, also the chain hash of its revision of N at
    /// min(C, its counter of N), so a replica can tell whether its history of N is the server's.
    func knowledge(_ request: Request, _ context: SyncRequestContext) async throws -> Response {
        let knowledge = try await storage.knowledge()
        var chain: ChainProbe?
        let query = request.uri.queryParameters
        if query.get("node") != nil || query.get("counter") != nil {
            guard let node = query.get("node").flatMap(NodeID.init), let counter = query.get("counter").flatMap(UInt64.init),
                counter <= UInt64(Int64.max)
            else { throw ProtocolError(.malformed, "a chain probe takes node (a node id) and counter (an integer >= 0)") }
            let held = min(counter, knowledge[node])
            let text = held > 0 ? try await storage.revisionText(at: Dot(node: node, counter: held)) : nil
            chain = ChainProbe(node: node, counter: held, hash: text.map(RevisionChain.hash(ofText:)))
        }
        return JSONResponse.make(KnowledgeResponse(node: try await storage.nodeID(), knowledge: knowledge, chain: chain).json)
    }

    func enrol(_ request: Request, _ context: SyncRequestContext) async throws -> Response {
        let address = context.sourceAddress
        let clock = Date().timeIntervalSince1970
        guard try await limiter.allows(address, now: clock, in: storage) else {
            throw ProtocolError(.rateLimited, "too many failed enrolment attempts from \(address); wait 15 minutes")
        }
        // No token protects this route: a small body limit, and a bad body counts as a failed attempt.
        let enrol: EnrolRequest
        do { enrol = try EnrolRequest(json: try await JSONBody.read(request, limit: SyncProtocol.maximumEnrolmentBytes)) } catch {
            try await limiter.recordFailure(address, now: clock, in: storage)
            throw error
        }
        // A node id is made from the device's own key (spec 2.1): no one can enrol another's.
        guard NodeBinding.isBound(enrol.node, publicKey: enrol.publicKey, nonce: enrol.nonce) else {
            try await limiter.recordFailure(address, now: clock, in: storage)
            throw ProtocolError(
                .forbidden,
                "node \(enrol.node) is not made from this device's key (its nonce does not derive it); update fieldsync and enrol again")
        }
        let token = Secrets.newToken()
        let principal: Principal
        do {
            principal = try await storage.redeem(
                codeHash: Secrets.hash(Secrets.normaliseCode(enrol.code)), node: enrol.node, publicKey: enrol.publicKey,
                tokenHash: Secrets.hash(token), repeatable: enrol.hasValidProof, now: Self.now())
        } catch let error as ProtocolError where error.code == .unauthorized {
            try await limiter.recordFailure(address, now: clock, in: storage)
            try await storage.appendAudit(
                AuditEntry(
                    time: Self.now(), user: nil, device: enrol.node.rawValue, action: "enrol-failed", detail: error.message,
                    address: auditAddress(context)))
            throw error
        }
        try await storage.appendAudit(
            AuditEntry(
                time: Self.now(), user: principal.account, device: enrol.node.rawValue, action: "enrol",
                detail: "role \(principal.role.rawValue)",
                address: auditAddress(context)))
        logger.info("enrol", metadata: ["user": "\(principal.account)", "node": "\(enrol.node)"])
        let directory = try await storage.certifiedKeyDirectory()
        return JSONResponse.make(
            EnrolResponse(
                token: token, user: principal.account, role: principal.role, serverNode: try await storage.nodeID(),
                serverKey: directory.serverKey, certificate: directory[enrol.node]?.certificate
            ).json)
    }

    func push(_ request: Request, _ context: SyncRequestContext) async throws -> Response {
        let started = ContinuousClock.now
        let principal = try context.requirePrincipal()
        let push = try PushRequest(json: try await JSONBody.read(request))
        // A pipelined batch is verified while the one before it is committed, then waits for it.
        let sequenced = push.sequence.map { (key: PushSequencer.Key(device: principal.node, id: $0.id), batch: $0.batch) }
        if let sequenced { await sequencer.begin(sequenced.key, batch: sequenced.batch) }
        do {
            let response = try await store(push, principal, context, started: started, after: sequenced)
            if let sequenced { await sequencer.finish(sequenced.key, batch: sequenced.batch) }
            return response
        } catch {
            if let sequenced { await sequencer.finish(sequenced.key, batch: sequenced.batch) }
            throw error
        }
    }

    func store(
        _ push: PushRequest, _ principal: Principal, _ context: SyncRequestContext, started: ContinuousClock.Instant,
        after sequenced: (key: PushSequencer.Key, batch: Int)?
    ) async throws -> Response {
        let directory = try await storage.keyDirectory()
        // Ed25519 checks on all cores before the write transaction, which then only compares keys.
        let checked = await directory.checkSignatures(push.revisions, skipping: try await storage.knowledge())
        if let sequenced { await sequencer.waitForTurn(sequenced.key, batch: sequenced.batch) }
        let address = auditAddress(context)
        // The fork refusal goes by who pushes, not by the `node` the body names: every node id of
        // the pushing account is its own.
        let owners = Set(directory.entries.values.filter { $0.user == principal.account }.map(\.node)).union([principal.node])
        let outcome = try await storage.store(
            push.revisions, from: owners, checked: checked, authenticate: { try directory.verify($0, checked: checked) },
            admit: { revision, current in try Self.admit(revision, current: current, directory: directory, checked: checked) },
            audit: { outcome in
                var detail =
                    "received \(push.revisions.count), accepted \(outcome.accepted), duplicates \(outcome.duplicates), new conflicts \(outcome.newConflicts)"
                if outcome.resolutions > 0 { detail += ", resolutions \(outcome.resolutions)" }
                if !outcome.setAside.isEmpty { detail += ", set aside \(outcome.setAside.count) (fork evidence)" }
                return AuditEntry(
                    time: Self.now(), user: principal.account, device: principal.node.rawValue,
                    action: outcome.resolutions > 0 ? "push+resolve" : "push",
                    detail: detail, address: address)
            })
        logger.info(
            "push",
            metadata: [
                "peer": "\(push.node)", "user": "\(principal.account)", "received": "\(push.revisions.count)",
                "accepted": "\(outcome.accepted)",
                "duplicates": "\(outcome.duplicates)", "new_conflicts": "\(outcome.newConflicts)",
                "duration_ms": "\(started.duration(to: .now).milliseconds)",
            ])
        return JSONResponse.make(
            PushResponse(
                accepted: outcome.accepted, duplicates: outcome.duplicates, setAside: outcome.setAside, knowledge: outcome.knowledge
            ).json)
    }

    /// The server's checks on every new pushed revision: a registered, unrevoked node and a valid
    /// signature. Conflicts never refuse a revision: one by a documenter that covers a conflict's
    /// candidates is one more candidate, since only an admin's revision ends a conflict (spec 6.3).
    static func admit(_ revision: Revision, current: RecordState?, directory: KeyDirectory, checked: CheckedSignatures = .none) throws {
        try directory.verify(revision, checked: checked)
        let entry = directory[revision.dot.node]!
        if entry.revoked != nil {
            throw ProtocolError.revoked(revision)
        }
    }

    func pull(_ request: Request, _ context: SyncRequestContext) async throws -> Response {
        let started = ContinuousClock.now
        let principal = try context.requirePrincipal()
        let pull = try PullRequest(json: try await JSONBody.read(request))
        let knowledge = try await storage.knowledge()
        let page = try await storage.missing(from: pull.knowledge, limit: pull.limit)
        // The stored revisions are already canonical JSON: splice them in rather than re-encoding.
        // The page carries its authors' certificates (spec 8.4), members in canonical order.
        var bytes = Array("{\"certificates\":[".utf8)
        for (i, certificate) in try await storage.certificates(of: page.nodes).enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            certificate.json.writeCanonical(into: &bytes)
        }
        bytes += Array("],\"knowledge\":".utf8)
        knowledge.json.writeCanonical(into: &bytes)
        bytes += Array(",\"more\":\(page.more),\"protocol\":\(SyncProtocol.version),\"revisions\":[".utf8)
        for (i, text) in page.texts.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes += Array(text.utf8)
        }
        bytes += Array("]}".utf8)
        try await storage.appendAudit(
            AuditEntry(
                time: Self.now(), user: principal.account, device: principal.node.rawValue, action: "pull",
                detail: "sent \(page.texts.count)\(page.more ? ", more remain" : "")", address: auditAddress(context)))
        logger.info(
            "pull",
            metadata: [
                "peer": "\(principal.node)", "user": "\(principal.account)", "sent": "\(page.texts.count)", "more": "\(page.more)",
                "duration_ms": "\(started.duration(to: .now).milliseconds)",
            ])
        return JSONResponse.make(bytes: bytes, compressingFor: request)
    }

    /// A restored replica's new node id, registered for the same device and key.
    func registerNode(_ request: Request, _ context: SyncRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let body = try await JSONBody.read(request)
        guard let o = body.objectValue else { throw ProtocolError(.malformed, "expected a JSON object") }
        try SyncProtocol.checkVersion(o)
        guard let text = o["node"]?.stringValue, let node = NodeID(text) else {
            throw ProtocolError(.malformed, "node: expected a node id")
        }
        guard NodeBinding.isBound(node, publicKey: principal.publicKey, nonce: o["nonce"]?.stringValue) else {
            throw ProtocolError(.forbidden, "node \(node) is not made from this device's key (give the nonce that derives it, spec 2.1)")
        }
        guard let token = BearerAuthMiddleware<Storage>.token(request) else {
            throw ProtocolError(.unauthorized, "a bearer token is required")
        }
        let tokenHash = Secrets.hash(token)
        try await storage.registerNode(node, for: principal, tokenHash: tokenHash, now: Self.now())
        try await storage.appendAudit(
            AuditEntry(
                time: Self.now(), user: principal.account, device: principal.node.rawValue, action: "register-node",
                detail: "new node \(node)",
                address: auditAddress(context)))
        return JSONResponse.make(["protocol": .int(SyncProtocol.version), "node": .string(node.rawValue)])
    }

}

extension Duration {
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}

/// Reading request bodies as JSON, within the protocol's size limit.
enum JSONBody {
    static func read(_ request: Request, limit: Int = SyncProtocol.maximumRequestBytes) async throws -> JSONValue {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw ProtocolError(
                .tooLarge,
                "request body larger than \(limit) bytes\(limit == SyncProtocol.maximumRequestBytes ? "; send smaller batches" : "")")
        }
        return try JSONValue.parseMessage(buffer.readableBytesView)
    }
}
