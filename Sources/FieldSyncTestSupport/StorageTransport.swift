import FieldSyncClient
import FieldSyncCore
import FieldSyncProtocol

/// A transport that talks to a ``SyncStorage`` directly, through the same message encoding as HTTP,
/// for fast property tests of many sync schedules without sockets.
public struct StorageTransport<Storage: SyncStorage>: SyncTransport {
    public let storage: Storage
    /// The key directory it serves (tests build it from their replicas' keys).
    public let directory: KeyDirectory

    public init(storage: Storage, directory: KeyDirectory) {
        self.storage = storage
        self.directory = directory
    }

    public func knowledge() async throws -> KnowledgeResponse {
        try KnowledgeResponse(json: KnowledgeResponse(node: try await storage.nodeID(), knowledge: try await storage.knowledge()).json)
    }

    public func push(node: NodeID, revisionTexts: [String]) async throws -> PushResponse {
        let request = try PushRequest(json: JSONValue.parseMessage(PushBody.bytes(node: node, revisionTexts: revisionTexts)))
        let outcome = try await storage.store(request.revisions) { _, _ in }
        return PushResponse(accepted: outcome.accepted, duplicates: outcome.duplicates, knowledge: outcome.knowledge)
    }

    public func keys() async throws -> KeyDirectory { directory }

    public func registerNode(_ node: NodeID) async throws {}

    public func pull(_ request: PullRequest) async throws -> PullResponse {
        let page = try await storage.missing(from: request.knowledge, limit: request.limit)
        let revisions = try page.texts.map { try Revision(json: JSONValue(parsing: $0)) }
        return PullResponse(revisions: revisions, more: page.more, knowledge: try await storage.knowledge())
    }
}
