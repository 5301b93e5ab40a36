import Dispatch
import Foundation

extension Array where Element: Sendable {
    /// `map` on all cores, results in order. For CPU-bound transforms of many elements (encoding a
    /// batch's record states); fewer than `2 × minimumChunk` elements are mapped on this thread.
    public func parallelMap<T: Sendable>(minimumChunk: Int = 32, _ transform: @Sendable (Element) -> T) -> [T] {
        guard count >= Swift.max(1, minimumChunk) * 2 else { return map(transform) }
        let chunks = Swift.min(ProcessInfo.processInfo.activeProcessorCount * 4, count / Swift.max(1, minimumChunk))
        let size = (count + chunks - 1) / chunks
        return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            nonisolated(unsafe) let slots = buffer
            self.withUnsafeBufferPointer { source in
                nonisolated(unsafe) let source = source
                DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                    for i in Swift.min(chunk * size, source.count)..<Swift.min((chunk + 1) * size, source.count) {
                        (slots.baseAddress! + i).initialize(to: transform(source[i]))
                    }
                }
            }
            initialized = count
        }
    }
}
