/// Why a revision cannot be applied yet: revisions it depends on are missing.
public struct CausalGap: Error, Sendable, Equatable, CustomStringConvertible {
    public var dot: Dot
    public var missing: String
    public var description: String { "causal gap: revision \(dot) needs \(missing), which this replica lacks" }
}

/// Whether a replica with some knowledge can apply a revision now.
public enum Delivery: Equatable, Sendable {
    /// Already held: applying again changes nothing.
    case duplicate
    /// Every revision it depends on is held.
    case ready
    case gap(CausalGap)
}

extension VersionVector {
    /// Causal delivery: a revision is applied only after the previous revision of its node and
    /// every revision in its context (see `Protocol/sync-protocol.md`, "Ordering and gaps").
    public func delivery(of revision: Revision) -> Delivery {
        let dot = revision.dot
        if covers(dot) { return .duplicate }
        if self[dot.node] != dot.counter - 1 {
            return .gap(CausalGap(dot: dot, missing: "\(dot.node):\(self[dot.node] + 1)…\(dot.counter - 1)"))
        }
        for node in revision.context.nodes where self[node] < revision.context[node] {
            return .gap(CausalGap(dot: dot, missing: "\(node):\(revision.context[node])"))
        }
        return .ready
    }
}

/// An in-memory replica: the reference model of what the SQLite store does, used by property
/// tests and conformance vectors.
public struct ReplicaState: Sendable, Equatable {
    public private(set) var knowledge = VersionVector()
    public private(set) var records: [RecordID: RecordState] = [:]
    /// Revisions in the order they were applied (a causal order).
    public private(set) var log: [Revision] = []
    /// Who may end conflicts here.
    public let authority: ResolutionAuthority

    public init(authority: ResolutionAuthority = .everyone) {
        self.authority = authority
    }

    /// Applies a revision if it is new; returns false for a duplicate, throws on a causal gap.
    @discardableResult
    public mutating func receive(_ revision: Revision) throws(CausalGap) -> Bool {
        switch knowledge.delivery(of: revision) {
        case .duplicate: return false
        case .gap(let gap): throw gap
        case .ready:
            knowledge.add(revision.dot)
            records[revision.record, default: RecordState(id: revision.record)].apply(revision, authority: authority)
            log.append(revision)
            return true
        }
    }

    /// The revisions that a peer with `knowledge` lacks, in causal order.
    public func missing(from peer: VersionVector) -> [Revision] {
        log.filter { !peer.covers($0.dot) }
    }

    /// The canonical text of every record state, sorted by id: equal for replicas that converged.
    public var canonicalState: String {
        records.keys.sorted().map { records[$0]!.json.canonicalText }.joined(separator: "\n")
    }
}
