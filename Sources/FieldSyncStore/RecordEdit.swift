import FieldSyncCore

/// A person's changes to one existing record, checked and written as one signed revision: what
/// `fieldsync edit` and the console's edit form both write. On a replica that may resolve (an
/// admin's, or one not enrolled) the edit ends the conflicts it covers; anyone else's edit of a
/// conflicted path is kept as one more candidate until an admin resolves it.
public struct RecordEdit: Sendable {
    public var changes: [FieldChange]

    public init(changes: [FieldChange]) { self.changes = changes }

    /// Writes the edit; returns the revision and the conflicted paths it only added a candidate to.
    public func commit(to store: ReplicaStore, record recordID: RecordID, now: Int64, newEntryID: () -> String) throws -> (
        revision: Revision, candidatePaths: [String]
    ) {
        let resolves = try store.resolutionAuthority().mayResolve(try store.identity().node)
        var candidatePaths: [String] = []
        let changes = self.changes
        let revision = try store.commitLocal(record: recordID, now: now) { current in
            guard let current else { throw StoreError(.notFound, "no record with id \(recordID)") }
            // Every edit writes the `deleted` register, so an edit that may resolve would silently settle a delete.
            if resolves, current.isConflicted(at: "deleted") {
                throw StoreError(
                    .invalid,
                    "record \(recordID) was deleted on one replica while edited on another: settle that first with `fieldsync resolve \(recordID.short) --keep` or `--delete`"
                )
            }
            if current.isDeleted { throw StoreError(.invalid, "record \(recordID) is deleted; it cannot be edited") }
            let operations = try LocalEdit.operations(for: changes, current: current, newEntryID: newEntryID)
            // Setting a field of an entry writes the entry's register too (spec 6.6).
            let entries = Set(
                operations.compactMap { op -> String? in
                    if case .set(let path, _) = op { return IncidentSchema.entryPath(of: path) } else { return nil }
                })
            if resolves, let entry = entries.sorted().first(where: { current.isConflicted(at: $0) }) {
                throw StoreError(
                    .invalid,
                    "the entry \(entry) was removed on one replica while edited on another: settle that first with `fieldsync resolve \(recordID.short) --pick \(entry)=N`"
                )
            }
            if !resolves {
                let conflicted = Set(current.conflicts.map(\.path))
                candidatePaths = Set(operations.map(\.path)).union(["deleted"]).union(entries).intersection(conflicted).sorted()
            }
            return (.put, operations, nil)
        }
        return (revision, candidatePaths)
    }
}
