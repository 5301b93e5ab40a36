import FieldSyncCore

/// An admin's choices for a record's open conflicts, checked and written as one resolution
/// revision: what `fieldsync resolve` and the console's conflict page both write. Its context
/// covers exactly the candidates the admin was shown; a candidate that arrives later stays in
/// conflict.
public struct ConflictResolution: Sendable {
    /// Path → chosen value (nil clears the field); `deleted` → true (delete the record) or false (keep it).
    public var choices: [String: JSONValue?]
    /// Why it was resolved this way; required.
    public var note: String

    /// A resolution refused by a rule, before anything was written. Each front end words it for its
    /// own controls (`--keep`, a radio button); ``message`` is the neutral wording.
    public enum Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        /// The record is also in a delete-against-edit conflict, and no choice was made on it.
        case deleteNotChosen(RecordID)
        /// A field of this entry was chosen while the entry itself is in conflict (removed against an edit).
        case entryNotChosen(String)
        /// Delete was chosen together with values: a delete writes no fields.
        case deleteWithValues
        /// A sync changed the candidates of this path since they were shown; now these.
        case candidatesChanged(path: String, now: [Dot])

        public var message: String {
            switch self {
            case .deleteNotChosen(let id):
                "record \(id) was also deleted on one replica while edited on another: choose to keep or delete it"
            case .entryNotChosen(let entry):
                "the entry \(entry) is also in conflict (removed against an edit): choose on \(entry) too, to keep or remove it"
            case .deleteWithValues: "a delete writes no fields: deleting the record cannot be combined with picked or new values"
            case .candidatesChanged(let path, let now):
                "the candidates of \(path) changed while resolving (now \(now.map(\.description).joined(separator: ", "))); look at the conflicts again and resolve again"
            }
        }

        public var description: String { message }
    }

    public init(choices: [String: JSONValue?], note: String) {
        self.choices = choices
        self.note = note
    }

    /// Whether this replica may resolve: an admin's, or one not enrolled with a central node.
    public static func mayResolve(in store: ReplicaStore) throws -> Bool {
        try store.enrolment().map { $0.role == .admin } ?? true
    }

    /// Refuses unless this replica may resolve (``mayResolve(in:)``).
    public static func checkAuthority(of store: ReplicaStore) throws {
        if let enrolment = try store.enrolment(), enrolment.role != .admin {
            throw StoreError(
                .invalid, "only an admin may resolve conflicts; \(enrolment.user) is enrolled as a \(enrolment.role.rawValue)")
        }
    }

    /// Writes the resolution of `state`, the record as the admin was shown it, as one signed
    /// revision. Nothing is written when a rule is broken or when a sync changed the candidates
    /// of a path it writes since `state` was read (the admin looks again).
    public func commit(to store: ReplicaStore, shown state: RecordState, now: Int64) throws -> Revision {
        let recordID = state.id
        guard state.isConflicted else { throw StoreError(.invalid, "record \(recordID) has no open conflicts") }
        try Self.checkAuthority(of: store)
        guard !note.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw StoreError(.invalid, "a note is required: say why you resolved it this way")
        }
        guard !choices.isEmpty else { throw StoreError(.invalid, "nothing chosen; the record is unchanged") }
        for path in choices.keys where !state.isConflicted(at: path) {
            throw StoreError(
                .invalid,
                "\(path) is not in conflict in record \(recordID); conflicted: \(state.conflicts.map(\.path).sorted().joined(separator: ", "))"
            )
        }
        // Any resolution writes the `deleted` register: it must not settle a delete the admin did not choose on.
        if state.conflicts.contains(where: { $0.path == "deleted" }), choices["deleted"] == nil {
            throw Refusal.deleteNotChosen(recordID)
        }
        // Setting a field of an entry also writes the entry's register: it must not keep an entry
        // whose removal is in conflict unless the admin chose on that too.
        for path in choices.keys {
            if let entry = IncidentSchema.entryPath(of: path), state.isConflicted(at: entry), choices[entry] == nil, choices[path]! != nil {
                throw Refusal.entryNotChosen(entry)
            }
        }
        let deleting = choices["deleted"] == .bool(true)
        var operations: [FieldOperation] = []
        for (path, value) in choices.sorted(by: { $0.key < $1.key }) where path != "deleted" {
            let op = RecordState.resolutionOperation(path: path, value: value)
            try IncidentSchema.validate(op)
            operations.append(op)
            // Removing an entry clears what is left of it too (the edit that came back).
            if value == nil, IncidentSchema.isEntryPath(path) {
                let parts = path.split(separator: ".").map(String.init)
                for field in state.entryPaths(collection: parts[0], entry: parts[1]) where choices[field] == nil {
                    operations.append(.unset(path: field))
                }
            }
        }
        if deleting, !operations.isEmpty { throw Refusal.deleteWithValues }
        // The registers the resolution writes: the chosen paths, `deleted`, and the entries whose
        // fields it sets. If a sync changed any of their candidates since they were read, nothing
        // is written and the admin looks again.
        var written = Set(choices.keys).union(["deleted"])
        for path in choices.keys { if let entry = IncidentSchema.entryPath(of: path) { written.insert(entry) } }
        let shown = Dictionary(uniqueKeysWithValues: written.map { ($0, state.candidates(at: $0).map(\.dot)) })
        let note = self.note
        return try store.commitLocal(record: recordID, now: now) { current in
            guard let current else { throw StoreError(.notFound, "no record with id \(recordID)") }
            for path in written.sorted() {
                let now = current.candidates(at: path).map(\.dot)
                guard now == shown[path] else { throw Refusal.candidatesChanged(path: path, now: now) }
            }
            return (deleting ? .delete : .put, operations, note)
        }
    }
}
