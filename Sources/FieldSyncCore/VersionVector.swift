/// How two version vectors relate. Version vectors form a partial order, so this is not `Comparable`.
public enum CausalOrder: String, Sendable, Equatable {
    case before, after, equal, concurrent
}

/// A map from node to the highest counter seen from it.
///
/// As a replica's knowledge it says which revisions the replica holds: every dot `(n, c)` with
/// `c <= self[n]`. As a revision's causal context it says which revisions of the record its author
/// had seen. Zero entries are never stored, so equal vectors are equal values.
public struct VersionVector: Hashable, Sendable, CustomStringConvertible {
    public private(set) var counters: [NodeID: UInt64]

    public init(_ counters: [NodeID: UInt64] = [:]) {
        self.counters = counters.filter { $0.value > 0 }
    }

    public subscript(node: NodeID) -> UInt64 {
        get { counters[node] ?? 0 }
        set { counters[node] = newValue == 0 ? nil : newValue }
    }

    public var isEmpty: Bool { counters.isEmpty }

    /// Nodes in canonical (sorted) order.
    public var nodes: [NodeID] { counters.keys.sorted() }

    /// The total number of dots covered.
    public var total: UInt64 { counters.values.reduce(0, +) }

    /// Whether the revision with this dot is included.
    public func covers(_ dot: Dot) -> Bool { self[dot.node] >= dot.counter }

    /// Whether every dot in `other` is included.
    public func covers(_ other: VersionVector) -> Bool {
        other.counters.allSatisfy { self[$0.key] >= $0.value }
    }

    public func compare(_ other: VersionVector) -> CausalOrder {
        let selfCovers = covers(other)
        let otherCovers = other.covers(self)
        switch (selfCovers, otherCovers) {
        case (true, true): return .equal
        case (true, false): return .after
        case (false, true): return .before
        case (false, false): return .concurrent
        }
    }

    /// Raises the entry for `dot.node` to at least `dot.counter`.
    public mutating func add(_ dot: Dot) {
        if dot.counter > self[dot.node] { self[dot.node] = dot.counter }
    }

    /// The pointwise maximum (least upper bound).
    public mutating func merge(_ other: VersionVector) {
        for (node, counter) in other.counters where counter > self[node] { self[node] = counter }
    }

    public func merging(_ other: VersionVector) -> VersionVector {
        var copy = self
        copy.merge(other)
        return copy
    }

    public var description: String {
        "{" + nodes.map { "\($0):\(self[$0])" }.joined(separator: ", ") + "}"
    }

    /// `{"<node>": counter, ...}`
    public var json: JSONValue {
        .object(Dictionary(uniqueKeysWithValues: counters.map { ($0.key.rawValue, JSONValue.int(Int64($0.value))) }))
    }

    public init(json: JSONValue, at path: String) throws(DecodingProblem) {
        guard case .object(let object) = json else { throw DecodingProblem(path, "expected an object of node: counter") }
        var counters: [NodeID: UInt64] = [:]
        for (key, value) in object {
            guard let node = NodeID(key) else { throw DecodingProblem("\(path).\(key)", "expected a node id (16 hex digits)") }
            guard case .int(let c) = value, c >= 0 else { throw DecodingProblem("\(path).\(key)", "expected a non-negative integer") }
            counters[node] = UInt64(c)
        }
        self.init(counters)
    }
}

/// A value in a message or file did not have the expected shape; names the JSON path.
public struct DecodingProblem: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var reason: String
    public init(_ path: String, _ reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { path.isEmpty ? reason : "\(path): \(reason)" }
}
