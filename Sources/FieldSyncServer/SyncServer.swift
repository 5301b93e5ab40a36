import FieldSyncCore
import FieldSyncProtocol
import Hummingbird
import Logging
import HTTPTypes
import NIOCore

/// Limits of the HTTP face, re-exported for the request context.
enum SyncProtocolLimits {
    static let maximumRequestBytes = SyncProtocol.maximumRequestBytes
}

/// How to run the central node.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int

    public init(host: String = "127.0.0.1", port: Int = 8080) {
        self.host = host
        self.port = port
    }
}

/// Builds the central node's router: health, knowledge, push and pull under `/v1/`.
/// Tests drive it in-process with `app.test(.router)`.
public func buildRouter(storage: some SyncStorage, logger: Logger) -> Router<SyncRequestContext> {
    let router = Router(context: SyncRequestContext.self)
    router.add(middleware: JSONErrorMiddleware())
    let routes = SyncRoutes(storage: storage, logger: logger)
    router.get("/v1/health") { _, _ in JSONResponse.make(["status": "ok", "protocol": .int(SyncProtocol.version)]) }
    router.get("/v1/knowledge") { request, context in try await routes.knowledge(request, context) }
    router.post("/v1/push") { request, context in try await routes.push(request, context) }
    router.post("/v1/pull") { request, context in try await routes.pull(request, context) }
    return router
}

/// Builds the central node. `onServerRunning` receives the bound port (useful with port 0).
public func buildApplication(
    storage: some SyncStorage, configuration: ServerConfiguration, logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    Application(
        router: buildRouter(storage: storage, logger: logger),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "fieldsync"),
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.port) },
        logger: logger)
}

/// The handlers behind the `/v1/` routes.
struct SyncRoutes<Storage: SyncStorage>: Sendable {
    let storage: Storage
    let logger: Logger

    func knowledge(_ request: Request, _ context: SyncRequestContext) async throws -> Response {
        let response = KnowledgeResponse(node: try await storage.nodeID(), knowledge: try await storage.knowledge())
        return JSONResponse.make(response.json)
    }

    func push(_ request: Request, _ context: SyncRequestContext) async throws -> Response {
        let started = ContinuousClock.now
        let body = try await Self.readJSON(request)
        let push = try PushRequest(json: body)
        let outcome = try await storage.store(push.revisions)
        logger.info(
            "push", metadata: [
                "peer": "\(push.node)", "received": "\(push.revisions.count)", "accepted": "\(outcome.accepted)",
                "duplicates": "\(outcome.duplicates)", "new_conflicts": "\(outcome.newConflicts)",
                "duration_ms": "\(started.duration(to: .now).milliseconds)",
            ])
        return JSONResponse.make(PushResponse(accepted: outcome.accepted, duplicates: outcome.duplicates, knowledge: outcome.knowledge).json)
    }

    func pull(_ request: Request, _ context: SyncRequestContext) async throws -> Response {
        let started = ContinuousClock.now
        let body = try await Self.readJSON(request)
        let pull = try PullRequest(json: body)
        let knowledge = try await storage.knowledge()
        let page = try await storage.missing(from: pull.knowledge, limit: pull.limit)
        // The stored revisions are already canonical JSON: splice them in rather than re-encoding.
        var bytes = Array("{\"knowledge\":".utf8)
        knowledge.json.writeCanonical(into: &bytes)
        bytes += Array(",\"more\":\(page.more),\"protocol\":\(SyncProtocol.version),\"revisions\":[".utf8)
        for (i, text) in page.texts.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes += Array(text.utf8)
        }
        bytes += Array("]}".utf8)
        logger.info(
            "pull", metadata: [
                "peer": "\(request.headers[.fieldSyncNode] ?? "unknown")", "sent": "\(page.texts.count)", "more": "\(page.more)",
                "duration_ms": "\(started.duration(to: .now).milliseconds)",
            ])
        return JSONResponse.make(bytes: bytes)
    }

    static func readJSON(_ request: Request) async throws -> JSONValue {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: SyncProtocol.maximumRequestBytes)
        } catch is NIOTooManyBytesError {
            throw ProtocolError(.tooLarge, "request body larger than \(SyncProtocol.maximumRequestBytes) bytes; send smaller batches")
        }
        return try JSONValue.parseMessage(buffer.readableBytesView)
    }
}

extension HTTPField.Name {
    /// The node id a client names itself by (informational; used in logs).
    public static let fieldSyncNode = Self("FieldSync-Node")!
}

extension Duration {
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
