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
}
