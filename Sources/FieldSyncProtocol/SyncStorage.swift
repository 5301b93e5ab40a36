import FieldSyncCore

/// What the central node needs from its storage. The server talks only to this protocol, so a
/// PostgreSQL backend shared by several stateless `serve` instances can replace the SQLite one.
///
/// Every method is atomic: a push stores all its revisions or none.
public protocol SyncStorage: Sendable {
    /// The storage's own node id (it authors no revisions; the id names it in responses).
    func nodeID() async throws -> NodeID
    func knowledge() async throws -> VersionVector
    /// Stores a causally ordered batch, all or nothing. Throws ``ProtocolError`` with `.causalGap`,
    /// `.conflictingDuplicate` or `.invalidField` when the batch cannot be stored.
    /// `admit` sees each new revision with the record it changes, inside the same transaction, and
    /// rejects the whole batch by throwing (signature and role checks).
    ///
    /// A revision that contradicts the history held for its node (a second content for a held dot,
    /// or a `prev` naming another predecessor) is kept aside as evidence when it is relayed, and
    /// refuses the batch with `.fork` when it is of one of `owners`, the pushing account's node ids
    /// (spec 4.5).
    func store(_ revisions: [Revision], from owners: Set<NodeID>, admit: @escaping @Sendable (Revision, RecordState?) throws -> Void)
        async throws -> StoreOutcome
    /// Up to `limit` revisions that `peer` lacks, in causal order, as canonical JSON text.
    func missing(from peer: VersionVector, limit: Int) async throws -> MissingRevisions
    /// The stored canonical text of the revision at `dot`, or nil when none is stored (chain probes).
    func revisionText(at dot: Dot) async throws -> String?
}

/// What storing a batch did.
public struct StoreOutcome: Sendable, Equatable {
    public var accepted: Int
    public var duplicates: Int
    /// Conflicted paths that did not exist before the batch.
    public var newConflicts: Int
    /// Revisions that settled conflicts.
    public var resolutions: Int
    /// Relayed revisions kept aside as evidence of a fork instead of being merged.
    public var setAside: [Dot]
    public var knowledge: VersionVector

    public init(accepted: Int, duplicates: Int, newConflicts: Int, resolutions: Int = 0, setAside: [Dot] = [], knowledge: VersionVector) {
        self.accepted = accepted
        self.duplicates = duplicates
        self.newConflicts = newConflicts
        self.resolutions = resolutions
        self.setAside = setAside
        self.knowledge = knowledge
    }
}

/// A page of revisions a peer lacks, kept as stored canonical text so that serving them needs no re-encoding.
public struct MissingRevisions: Sendable, Equatable {
    public var texts: [String]
    public var more: Bool
    /// The nodes that authored them: whose certificates a pull page carries.
    public var nodes: Set<NodeID>
    /// The dot of each text, in the same order, where the storage reads them anyway (a replica's
    /// store does; empty otherwise): a pipelined push reads the next batch as if this one were stored.
    public var dots: [Dot]

    public init(texts: [String], more: Bool, nodes: Set<NodeID> = [], dots: [Dot] = []) {
        self.texts = texts
        self.more = more
        self.nodes = nodes
        self.dots = dots
    }
}
