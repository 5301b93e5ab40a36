/// Who may end a conflict. On the central node and on an enrolled replica only revisions authored
/// by an admin's node ids do; on an unenrolled replica, which knows no roles, every revision does
/// (spec 6.3).
public enum ResolutionAuthority: Hashable, Sendable {
    case everyone
    case admins(Set<NodeID>)

    public func mayResolve(_ node: NodeID) -> Bool {
        switch self {
        case .everyone: true
        case .admins(let nodes): nodes.contains(node)
        }
    }
}

/// One run of a node's writes to a register: its consecutive writes there (by counter) that all
/// wrote the same value. `first` and `last` are counters of actual writes.
public struct WriteRun: Hashable, Sendable {
    public var first: UInt64
    public var last: UInt64
    /// Nil when the writes cleared the field.
    public var value: JSONValue?
}

/// Two writes to one path whose authors had not seen each other's and that wrote different values,
/// not yet covered by a resolution. `low < high`.
public struct Dispute: Hashable, Comparable, Sendable {
    public var low: Dot
    public var high: Dot

    public init(_ a: Dot, _ b: Dot) {
        (low, high) = a < b ? (a, b) : (b, a)
    }

    /// Any revision whose context covers `self` also covers `other`: the same two nodes, and each
    /// counter at least as high.
    func dominates(_ other: Dispute) -> Bool {
        low.node == other.low.node && high.node == other.high.node && low.counter >= other.low.counter
            && high.counter >= other.high.counter
    }

    public static func < (a: Dispute, b: Dispute) -> Bool { a.low != b.low ? a.low < b.low : a.high < b.high }
}

/// What a scalar register remembers of every write it received, so that whether its path is in
/// conflict depends only on which revisions are held and who wrote them, never on the order they
/// arrived in (spec 6.3).
///
/// A path is in conflict while some pair of concurrent writes of different values is not covered
/// by the context of a resolution: a revision writing the path by an author the
/// ``ResolutionAuthority`` allows. The log keeps, per node, its last two runs of writes of one
/// value, and of the open pairs only those no other open pair dominates (covering the dominant
/// pair covers the dominated one), so both stay small and are the same on every replica holding
/// the same revisions.
public struct WriteLog: Hashable, Sendable {
    public internal(set) var runs: [NodeID: [WriteRun]] = [:]
    /// Sorted; empty when the path is not in conflict.
    public internal(set) var disputes: [Dispute] = []

    public init() {}

    /// Folds in one write of `value` by `dot`, whose author had seen `context`. A resolution first
    /// ends the disputes its context covers; then every earlier write it had not seen that holds
    /// another value opens a dispute with it.
    mutating func record(_ dot: Dot, value: JSONValue?, context: VersionVector, resolves: Bool) {
        if resolves { disputes.removeAll { context.covers($0.low) && context.covers($0.high) } }
        for (node, list) in runs {
            // Adjacent runs hold different values, so the latest unseen write of another value is
            // the last run's last write, or the one before it.
            guard let last = list.last else { continue }
            let differing = last.value != value ? last : (list.count > 1 ? list[list.count - 2] : nil)
            guard let differing, differing.last > context[node] else { continue }
            let other = Dot(node: node, counter: differing.last)
            if other != dot { open(Dispute(other, dot)) }
        }
        append(dot, value: value)
    }

    private mutating func open(_ dispute: Dispute) {
        guard !disputes.contains(where: { $0 == dispute || $0.dominates(dispute) }) else { return }
        disputes.removeAll { dispute.dominates($0) }
        let index = disputes.firstIndex { dispute < $0 } ?? disputes.endIndex
        disputes.insert(dispute, at: index)
    }

    /// A node's revisions arrive in counter order, so the write normally extends or follows the last run.
    private mutating func append(_ dot: Dot, value: JSONValue?) {
        var list = runs[dot.node, default: []]
        let position = list.firstIndex { $0.last > dot.counter } ?? list.endIndex
        if position == list.endIndex {
            if let last = list.last, last.value == value {
                list[list.count - 1].last = dot.counter
            } else {
                list.append(WriteRun(first: dot.counter, last: dot.counter, value: value))
            }
        } else {
            // Out of order (a record replayed later fixes any difference): split the run it falls in.
            let run = list[position]
            if run.first < dot.counter {
                if run.value == value { return }
                list[position].last = dot.counter - 1
                list.insert(WriteRun(first: dot.counter, last: dot.counter, value: value), at: position + 1)
                list.insert(WriteRun(first: dot.counter + 1, last: run.last, value: run.value), at: position + 2)
            } else {
                list.insert(WriteRun(first: dot.counter, last: dot.counter, value: value), at: position)
            }
        }
        // Only a node's last two runs can ever open a dispute (adjacent runs differ in value, so
        // whatever a later write holds, one of them holds something else and is the latest such):
        // older runs are dropped, which keeps the log a few entries per node however long the
        // history (and is the same on every replica).
        if list.count > 2 { list.removeFirst(list.count - 2) }
        runs[dot.node] = list
    }

    public var isDisputed: Bool { !disputes.isEmpty }
}
