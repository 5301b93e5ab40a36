extension Array {
    /// In an array sorted by `counter`, the index of the last element whose counter is at most
    /// `limit`, or nil when there is none (binary search).
    func lastIndex(counterAtMost limit: UInt64, _ counter: (Element) -> UInt64) -> Int? {
        var low = 0
        var high = count
        while low < high {
            let middle = (low + high) / 2
            if counter(self[middle]) <= limit { low = middle + 1 } else { high = middle }
        }
        return low == 0 ? nil : low - 1
    }
}
