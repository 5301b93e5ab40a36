import FieldSyncCore
import FieldSyncStore

/// Small helpers that make incident revisions in test replicas.
public enum Fixtures {
    /// Creates a record with the given fields on `store` and returns its id.
    @discardableResult
    public static func addIncident(_ store: ReplicaStore, title: String, _ changes: [FieldChange] = [], now: Int64 = 1_741_340_000_000)
        throws -> RecordID
    {
        let id = RecordID.generate(millisecondsSince1970: now)
        _ = try store.commitLocal(record: id, now: now) { current in
            (
                .put,
                try LocalEdit.operations(
                    for: [.set(path: "title", value: .string(title))] + changes, current: current, newEntryID: { "e1" }), nil
            )
        }
        return id
    }

    /// Applies `changes` to an existing record as a local edit.
    public static func edit(_ store: ReplicaStore, _ id: RecordID, _ changes: [FieldChange], now: Int64 = 1_741_340_100_000) throws {
        _ = try store.commitLocal(record: id, now: now) { current in
            (.put, try LocalEdit.operations(for: changes, current: current, newEntryID: { "e2" }), nil)
        }
    }

    /// The canonical state of every record, for byte-for-byte convergence checks.
    public static func canonicalState(_ store: ReplicaStore) throws -> String {
        try store.records(includeDeleted: true).map { $0.json.canonicalText }.joined(separator: "\n")
    }
}
