import Foundation

#if canImport(Glibc)
    import Glibc
#endif

extension Array where Element == UInt8 {
    /// Whether `subsequence` occurs in these bytes (memchr and memcmp: fast enough for a disk image).
    public func contains(subsequence: [UInt8]) -> Bool {
        guard !subsequence.isEmpty, count >= subsequence.count else { return false }
        return withUnsafeBytes { haystack in
            subsequence.withUnsafeBytes { needle in
                guard let base = haystack.baseAddress, let first = needle.baseAddress else { return false }
                var offset = 0
                let last = haystack.count - needle.count
                while offset <= last {
                    guard let hit = memchr(base + offset, Int32(needle[0]), last - offset + 1) else { return false }
                    let position = base.distance(to: UnsafeRawPointer(hit))
                    if memcmp(base + position, first, needle.count) == 0 { return true }
                    offset = position + 1
                }
                return false
            }
        }
    }
}
