/// One write that is still current in a register: not superseded by any later write whose author had seen it.
public struct Candidate: Hashable, Sendable {
    public var dot: Dot
    /// The value written; nil when the write cleared the field.
    public var value: JSONValue?
    public var author: String
    public var time: Int64

    public init(dot: Dot, value: JSONValue?, author: String, time: Int64) {
        self.dot = dot
        self.value = value
        self.author = author
        self.time = time
    }

    /// The order candidates are listed and numbered in, and whose last element is the display winner:
    /// by wall-clock time, then by dot. Every replica applies it identically, whatever the arrival order.
    public static func displayOrder(_ a: Candidate, _ b: Candidate) -> Bool {
        a.time != b.time ? a.time < b.time : a.dot < b.dot
    }
}

/// A path in conflict: two concurrent writes gave it different values and no resolution has
/// covered both since (spec 6.3). Its current values may have come to agree meanwhile.
public struct Conflict: Hashable, Sendable {
    public var path: String
    /// The current, un-superseded values, in display order; numbered from 1 in listings. The last
    /// is the display winner.
    public var candidates: [Candidate]
    /// The open disputes: pairs of concurrent writes of different values that no resolution covers.
    public var disputes: [Dispute]

    public init(path: String, candidates: [Candidate], disputes: [Dispute] = []) {
        self.path = path
        self.candidates = candidates
        self.disputes = disputes
    }
}

/// The merged state of one record: a multi-value register per field path and per set element.
///
/// Applying revisions in any causal order gives the same state (see `Protocol/sync-protocol.md`,
/// "Merge"); ``apply(_:authority:)`` is idempotent, so re-delivery is harmless.
public struct RecordState: Hashable, Sendable {
    public let id: RecordID
    /// The record's version vector: for each node, the highest counter of its revisions of this record.
    public internal(set) var version: VersionVector
    /// Current candidates per register, each array in display order.
    public internal(set) var registers: [RegisterKey: [Candidate]]
    /// Per scalar register, what decides its conflicts: the writes it received and its open disputes.
    public internal(set) var logs: [RegisterKey: WriteLog]

    public init(id: RecordID) {
        self.id = id
        version = VersionVector()
        registers = [:]
        logs = [:]
    }

    /// Merges one revision of this record. The caller guarantees causal delivery: every revision
    /// in `revision.context` was applied before. `authority` says whether its author may end
    /// conflicts. Returns false when the revision was already applied.
    @discardableResult
    public mutating func apply(_ revision: Revision, authority: ResolutionAuthority) -> Bool {
        precondition(revision.record == id, "revision of another record")
        if version.covers(revision.dot) { return false }
        version.add(revision.dot)
        let resolves = authority.mayResolve(revision.dot.node)
        for write in revision.writes {
            if write.key.element == nil {
                logs[write.key, default: WriteLog()].record(revision.dot, value: write.value, context: revision.context, resolves: resolves)
            }
            var current = registers[write.key, default: []].filter { !revision.context.covers($0.dot) }
            current.append(Candidate(dot: revision.dot, value: write.value, author: revision.author, time: revision.time))
            current.sort(by: Candidate.displayOrder)
            registers[write.key] = current
        }
        return true
    }

    /// The current candidates of a scalar path.
    public func candidates(at path: String) -> [Candidate] { registers[RegisterKey(path: path)] ?? [] }

    /// Every scalar path (including `deleted`) with an open dispute, sorted by path. Set elements
    /// never conflict: an element is present when any current write added it.
    public var conflicts: [Conflict] {
        logs.filter(\.value.isDisputed).keys.sorted().map { key in
            Conflict(path: key.path, candidates: registers[key] ?? [], disputes: logs[key]!.disputes)
        }
    }

    public var isConflicted: Bool { logs.values.contains(where: \.isDisputed) }

    /// Whether `path` is in conflict.
    public func isConflicted(at path: String) -> Bool { logs[RegisterKey(path: path)]?.isDisputed ?? false }

    /// Deleted when every current write to `deleted` is a delete and no delete-against-edit
    /// conflict is open; while one is, the record shows its edited fields.
    public var isDeleted: Bool {
        guard let heads = registers[.deleted], !heads.isEmpty, !isConflicted(at: "deleted") else { return false }
        return heads.allSatisfy { $0.value == .bool(true) }
    }

    /// The displayed value of a scalar path: the last candidate in display order.
    public func value(at path: String) -> JSONValue? { candidates(at: path).last?.value ?? nil }

    /// The elements of a set field that are present, in canonical order.
    public func elements(of path: String) -> [String] {
        registers.compactMap { key, candidates -> String? in
            guard key.path == path, let element = key.element else { return nil }
            return candidates.contains(where: { $0.value == .bool(true) }) ? element : nil
        }.sorted(by: JSONValue.utf8Less)
    }

    /// Collection entries (`victims.<id>`) that were removed: their own register holds only
    /// removals and is not in conflict. Their fields are not shown (spec 6.6).
    public var removedEntries: Set<String> {
        Set(
            registers.compactMap { key, candidates in
                key.element == nil && IncidentSchema.isEntryPath(key.path) && !candidates.isEmpty
                    && candidates.allSatisfy { $0.value == nil }
                    && !isConflicted(at: key.path) ? key.path : nil
            })
    }

    /// Whether a scalar register is shown among the record's fields: not `deleted`, not an entry's
    /// own register, and not a field of a removed entry.
    public func isShownField(_ key: RegisterKey, removed: Set<String>) -> Bool {
        guard key != .deleted, !IncidentSchema.isEntryPath(key.path) else { return false }
        return IncidentSchema.entryPath(of: key.path).map { !removed.contains($0) } ?? true
    }

    /// The record as nested JSON: each scalar path's display value placed at its dotted path, set
    /// fields as sorted arrays, collection entries as objects keyed by entry id.
    public var fields: JSONValue {
        var root: [String: JSONValue] = [:]
        var sets: [String: [String]] = [:]
        let removed = removedEntries
        for (key, candidates) in registers where key.element != nil || isShownField(key, removed: removed) {
            if let element = key.element {
                if candidates.contains(where: { $0.value == .bool(true) }) { sets[key.path, default: []].append(element) }
            } else if let value = candidates.last?.value {
                RecordState.insert(
                    value, at: key.path.split(separator: ".", omittingEmptySubsequences: false).map(String.init), into: &root)
            }
        }
        for (path, elements) in sets {
            root[path] = .array(elements.sorted(by: JSONValue.utf8Less).map(JSONValue.string))
        }
        return .object(root)
    }

    /// Paths under a collection entry (`victims.<id>.`) that currently hold a value.
    public func entryPaths(collection: String, entry: String) -> [String] {
        let prefix = "\(collection).\(entry)."
        return registers.compactMap { key, candidates in
            key.element == nil && key.path.hasPrefix(prefix) && candidates.contains(where: { $0.value != nil }) ? key.path : nil
        }.sorted(by: JSONValue.utf8Less)
    }

    private static func insert(_ value: JSONValue, at components: [String], into object: inout [String: JSONValue]) {
        guard let head = components.first else { return }
        if components.count == 1 {
            object[head] = value
            return
        }
        var child = object[head]?.objectValue ?? [:]
        insert(value, at: Array(components.dropFirst()), into: &child)
        object[head] = .object(child)
    }
}
