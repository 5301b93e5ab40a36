/// One event in the causal history: the `counter`-th revision authored by `node` (counters start at 1).
public struct Dot: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var node: NodeID
    public var counter: UInt64

    public init(node: NodeID, counter: UInt64) {
        self.node = node
        self.counter = counter
    }

    public var description: String { "\(node):\(counter)" }

    /// Reads the written form `NODE:COUNTER`.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let node = NodeID(String(parts[0])), let counter = UInt64(parts[1]), counter >= 1,
            String(counter) == parts[1]
        else { return nil }
        self.init(node: node, counter: counter)
    }

    public static func < (a: Dot, b: Dot) -> Bool {
        a.node != b.node ? a.node < b.node : a.counter < b.counter
    }
}
