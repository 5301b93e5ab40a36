import FieldSyncClient
import FieldSyncCore
import FieldSyncProtocol

/// A transport that talks to a ``SyncStorage`` directly, through the same message encoding as HTTP,
/// for fast property tests of many sync schedules without sockets.
public struct StorageTransport<Storage: SyncStorage>: SyncTransport {
    public let storage: Storage

    public init(storage: Storage) { self.storage = storage }

    public func knowledge() async throws -> KnowledgeResponse {
        try KnowledgeResponse(json: KnowledgeResponse(node: try await storage.nodeID(), knowledge: try await storage.knowledge()).json)
    }

    public func push(node: NodeID, revisionTexts: [String]) async throws -> PushResponse {
        let request = try PushRequest(json: JSONValue.parseMessage(PushBody.bytes(node: node, revisionTexts: revisionTexts)))
        let outcome = try await storage.store(request.revisions)
        return PushResponse(accepted: outcome.accepted, duplicates: outcome.duplicates, knowledge: outcome.knowledge)
    }

    public func pull(_ request: PullRequest) async throws -> PullResponse {
        let page = try await storage.missing(from: request.knowledge, limit: request.limit)
        let revisions = try page.texts.map { try Revision(json: JSONValue(parsing: $0)) }
        return PullResponse(revisions: revisions, more: page.more, knowledge: try await storage.knowledge())
    }
}
