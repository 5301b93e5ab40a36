import FieldSyncClient
import FieldSyncCore
import FieldSyncProtocol
import Synchronization

/// A transport that talks to a ``SyncStorage`` directly, through the same message encoding as HTTP,
/// for fast property tests of many sync schedules without sockets.
public struct StorageTransport<Storage: SyncStorage>: SyncTransport {
    public let storage: Storage
    /// The key directory it serves (tests build it from their replicas' keys).
    public var directory: KeyDirectory { registry?.directory ?? fixed }
    let fixed: KeyDirectory
    let registry: KeyRegistry?
    /// The public key of the device this transport speaks for, given to node ids it registers.
    let devicePublicKey: String?

    public init(storage: Storage, directory: KeyDirectory) {
        self.storage = storage
        self.fixed = directory
        self.registry = nil
        self.devicePublicKey = nil
    }

    /// A transport for one device whose node registrations (after a restore or a fork) go into a
    /// registry shared by every device's transport, as on a central node.
    public init(storage: Storage, registry: KeyRegistry, devicePublicKey: String) {
        self.storage = storage
        self.fixed = KeyDirectory([])
        self.registry = registry
        self.devicePublicKey = devicePublicKey
    }

    public func knowledge(probing dot: Dot?) async throws -> KnowledgeResponse {
        let knowledge = try await storage.knowledge()
        var chain: ChainProbe?
        if let dot {
            let held = min(dot.counter, knowledge[dot.node])
            let text = held > 0 ? try await storage.revisionText(at: Dot(node: dot.node, counter: held)) : nil
            chain = ChainProbe(node: dot.node, counter: held, hash: text.map(RevisionChain.hash(ofText:)))
        }
        return try KnowledgeResponse(json: KnowledgeResponse(node: try await storage.nodeID(), knowledge: knowledge, chain: chain).json)
    }

    /// As over HTTP, a refusal comes back as ``SyncError/rejected(status:error:)``.
    public func push(node: NodeID, revisionTexts: [String]) async throws -> PushResponse {
        let request = try PushRequest(json: JSONValue.parseMessage(PushBody.bytes(node: node, revisionTexts: revisionTexts)))
        let outcome: StoreOutcome
        // As on a central node, every node id registered for this device is its own.
        var owners: Set<NodeID> = [node]
        if let registry, let devicePublicKey {
            owners.formUnion(registry.directory.entries.values.filter { $0.publicKey == devicePublicKey }.map(\.node))
        }
        do { outcome = try await storage.store(request.revisions, from: owners) { _, _ in } } catch let error as ProtocolError {
            throw SyncError.rejected(status: 409, error: error)
        }
        return PushResponse(
            accepted: outcome.accepted, duplicates: outcome.duplicates, setAside: outcome.setAside, knowledge: outcome.knowledge)
    }

    public func keys() async throws -> KeyDirectory { directory }

    public func registerNode(_ node: NodeID, nonce: String?) async throws {
        if let registry, let devicePublicKey { registry.register(KeyEntry(node: node, publicKey: devicePublicKey)) }
    }

    public func pull(_ request: PullRequest) async throws -> PullResponse {
        let page = try await storage.missing(from: request.knowledge, limit: request.limit)
        let revisions = try page.texts.map { try Revision(json: JSONValue(parsing: $0)) }
        return PullResponse(revisions: revisions, more: page.more, knowledge: try await storage.knowledge())
    }
}

/// The key directory of an in-process central node: node ids registered by devices, shared by every
/// device's ``StorageTransport``.
public final class KeyRegistry: Sendable {
    private let entries: Mutex<[NodeID: KeyEntry]>

    public init(_ initial: [KeyEntry] = []) {
        entries = Mutex(Dictionary(initial.map { ($0.node, $0) }, uniquingKeysWith: { a, _ in a }))
    }

    public var directory: KeyDirectory { KeyDirectory(entries.withLock { Array($0.values) }) }

    public func register(_ entry: KeyEntry) { entries.withLock { $0[entry.node] = $0[entry.node] ?? entry } }
}
