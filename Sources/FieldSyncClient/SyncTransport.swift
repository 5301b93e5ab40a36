import FieldSyncCore
import FieldSyncProtocol

/// How the sync driver reaches a central node: over HTTP in production, in-process in tests.
public protocol SyncTransport: Sendable {
    /// The server's knowledge; with `probing`, also the server's chain hash for that node at
    /// min(counter, what it holds of the node) (`GET /v1/knowledge?node=&counter=`).
    func knowledge(probing: Dot?) async throws -> KnowledgeResponse
    /// Sends one batch of revisions, given as their canonical JSON texts.
    func push(node: NodeID, revisionTexts: [String]) async throws -> PushResponse
    /// Sends one batch of a pipelined push: the driver sends batch k+1 before batch k is answered
    /// when ``pipelinesPushes`` is true, numbering them in `sequence` (spec 8.3.1).
    func push(node: NodeID, revisionTexts: [String], sequence: PushSequence) async throws -> PushResponse
    /// Whether batches may be in flight together (each request its own connection).
    var pipelinesPushes: Bool { get }
    func pull(_ request: PullRequest) async throws -> PullResponse
    /// The server's key directory: every enrolled node's public key, user, role and revocation.
    func keys() async throws -> KeyDirectory
    /// The key directory unless it still has entity tag `known` (spec 8.6): nil when unchanged,
    /// else the directory and its tag.
    func keys(unlessTagged known: String?) async throws -> (directory: KeyDirectory, tag: String?)?
    /// Registers a new node id for this device (after the replica retired its old one), with the
    /// nonce that binds it to the device's key (spec 2.1).
    func registerNode(_ node: NodeID, nonce: String?) async throws
}

extension SyncTransport {
    public func knowledge() async throws -> KnowledgeResponse { try await knowledge(probing: nil) }

    /// Transports that do not pipeline send one batch at a time and need no sequence.
    public func push(node: NodeID, revisionTexts: [String], sequence: PushSequence) async throws -> PushResponse {
        try await push(node: node, revisionTexts: revisionTexts)
    }

    public var pipelinesPushes: Bool { false }

    /// Transports without entity tags always send the directory.
    public func keys(unlessTagged known: String?) async throws -> (directory: KeyDirectory, tag: String?)? { (try await keys(), nil) }
}

/// Why a sync step failed, split by whether trying again can help.
public enum SyncError: Error, Sendable, CustomStringConvertible {
    /// The server could not be reached or the connection broke; worth retrying.
    case transport(String)
    /// The server answered 5xx; worth retrying.
    case server(status: Int, message: String)
    /// The server refused the request (4xx); retrying the same request cannot help.
    case rejected(status: Int, error: ProtocolError)
    /// The server's answer was not a valid protocol message.
    case badResponse(String)

    public var isTransient: Bool {
        switch self {
        case .transport, .server: true
        case .rejected, .badResponse: false
        }
    }

    public var description: String {
        switch self {
        case .transport(let message): message
        case .server(let status, let message): "the server failed (HTTP \(status)): \(message)"
        case .rejected(let status, let error): "the server refused the request (HTTP \(status), \(error.code.rawValue)): \(error.message)"
        case .badResponse(let message): "unexpected answer from the server: \(message)"
        }
    }
}
