/// A binary min-heap: the smallest element first. Used for the canonical order's free revisions and
/// for merging per-node runs of a log by position.
public struct MinHeap<Element: Comparable>: Sendable where Element: Sendable {
    private var items: [Element] = []

    public init(_ initial: [Element] = []) {
        for item in initial { push(item) }
    }

    public var isEmpty: Bool { items.isEmpty }

    public mutating func push(_ item: Element) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child] < items[parent] else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    public mutating func pop() -> Element? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        guard !items.isEmpty else { return first }
        items[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < items.count, items[left] < items[smallest] { smallest = left }
            if right < items.count, items[right] < items[smallest] { smallest = right }
            guard smallest != parent else { return first }
            items.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
