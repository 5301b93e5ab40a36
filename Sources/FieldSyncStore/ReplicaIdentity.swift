import FieldSyncCore

/// Who this replica is: its current node id, its user's name, and the server it syncs with.
public struct ReplicaIdentity: Sendable, Equatable {
    public var node: NodeID
    public var name: String
    public var server: String?
    /// Node ids this replica used before (e.g. before it was restored from a backup).
    public var retiredNodes: [NodeID]
}

/// Counts for `fieldsync status`.
public struct ReplicaStatus: Sendable, Equatable {
    public var identity: ReplicaIdentity
    public var records: Int
    public var deletedRecords: Int
    public var revisions: Int
    public var conflictedRecords: Int
    public var conflicts: Int
    public var knowledge: VersionVector
    /// Revisions kept aside as fork evidence (`forked_revision`).
    public var forkedRevisions = 0
    /// Revisions from bundles held until the central node vouches for them (`held_revision`).
    public var heldRevisions = 0
}

/// One stored revision with where it sits in this replica's log.
public struct StoredRevision: Sendable, Equatable {
    public var seq: Int64
    public var revision: Revision
    /// When this replica received it (milliseconds since 1970).
    public var received: Int64
}

/// What applying a batch of revisions did.
public struct ReceiveOutcome: Sendable, Equatable {
    public var accepted: Int
    public var duplicates: Int
    public var newConflicts: Int
    /// Revisions that settled conflicts (they superseded two or more concurrent candidates of a path).
    public var resolutions: Int
    public var knowledge: VersionVector
    /// Revisions kept aside as evidence of a fork (a second content for a held dot, or another
    /// history of their node) instead of being merged.
    public var setAside = 0
    /// True when one of those was of this replica's own node id: this replica has forked.
    public var ownNodeForked = false
    /// The dots of those that contradict what this replica holds (not the ones merely depending on
    /// them): where its history of another node differs from the sender's.
    public var contested: [Dot] = []
    /// Every dot set aside, in batch order.
    public var setAsideDots: [Dot] = []
    /// The newest counter applied per node.
    public var appliedHeads: [NodeID: UInt64] = [:]
    /// Revisions of this replica's own re-minted because the batch proved its node id had forked.
    public var reminted = 0
    /// The lowest counter of this replica's node at which a received revision was proven to be
    /// another content under the same history (its `prev` is this replica's revision before it):
    /// where its branch must be re-minted from. Nil when no fork point is proven.
    public var ownForkPoint: UInt64?
    /// Revisions held instead of merged: what this replica's central node would refuse (spec 12.4),
    /// each with its reason, in batch order.
    public var held: [(dot: Dot, reason: String)] = []

    public static func == (a: ReceiveOutcome, b: ReceiveOutcome) -> Bool {
        a.accepted == b.accepted && a.duplicates == b.duplicates && a.newConflicts == b.newConflicts && a.resolutions == b.resolutions
            && a.knowledge == b.knowledge && a.setAside == b.setAside && a.ownNodeForked == b.ownNodeForked && a.contested == b.contested
            && a.setAsideDots == b.setAsideDots && a.appliedHeads == b.appliedHeads && a.reminted == b.reminted
            && a.ownForkPoint == b.ownForkPoint && a.held.map(\.dot) == b.held.map(\.dot) && a.held.map(\.reason) == b.held.map(\.reason)
    }
}
