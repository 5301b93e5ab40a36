import FieldSyncClient
import FieldSyncCore
import FieldSyncProtocol

/// A test transport that passes every request on to `inner`, except those it implements itself.
protocol ForwardingTransport: SyncTransport {
    var inner: any SyncTransport { get }
}

extension ForwardingTransport {
    func knowledge(probing dot: Dot?) async throws -> KnowledgeResponse { try await inner.knowledge(probing: dot) }
    func push(node: NodeID, revisionTexts: [String]) async throws -> PushResponse {
        try await inner.push(node: node, revisionTexts: revisionTexts)
    }
    func push(node: NodeID, revisionTexts: [String], sequence: PushSequence) async throws -> PushResponse {
        try await inner.push(node: node, revisionTexts: revisionTexts, sequence: sequence)
    }
    var pipelinesPushes: Bool { inner.pipelinesPushes }
    func pull(_ request: PullRequest) async throws -> PullResponse { try await inner.pull(request) }
    func keys() async throws -> KeyDirectory { try await inner.keys() }
    func keys(unlessTagged known: String?) async throws -> (directory: KeyDirectory, tag: String?)? {
        try await inner.keys(unlessTagged: known)
    }
    func registerNode(_ node: NodeID, nonce: String?) async throws { try await inner.registerNode(node, nonce: nonce) }
}
