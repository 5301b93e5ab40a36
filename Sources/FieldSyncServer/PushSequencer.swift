import FieldSyncCore
import FieldSyncProtocol

/// Orders the batches of a device's pipelined push on this instance (spec 8.3.1): batch k+1 of a
/// sequence is verified while batch k is committed, then waits for k to finish before it is stored.
///
/// Only order, never correctness, rests on it: the store refuses a batch that does not follow what
/// it holds (a causal gap), and the client then goes on one batch at a time. So a batch waits only
/// for a predecessor this instance has seen begin (another instance may have taken it), and never
/// for long; what it remembers is bounded.
actor PushSequencer {
    struct Key: Hashable {
        var device: NodeID
        var id: String
    }

    enum Stage {
        case running
        case finished
    }

    struct Sequence {
        var stages: [Int: Stage] = [:]
        var touched: ContinuousClock.Instant
    }

    private var sequences: [Key: Sequence] = [:]
    /// Sequences remembered at most; the least recently used is forgotten first.
    let capacity: Int

    init(capacity: Int = 4096) { self.capacity = capacity }

    func begin(_ key: Key, batch: Int) {
        var sequence = sequences[key] ?? Sequence(touched: .now)
        sequence.stages[batch] = .running
        sequence.touched = .now
        // A pipeline holds two batches in flight: older ones need not be remembered.
        sequence.stages = sequence.stages.filter { $0.key >= batch - 4 }
        sequences[key] = sequence
        if sequences.count > capacity, let oldest = sequences.min(by: { $0.value.touched < $1.value.touched })?.key {
            sequences[oldest] = nil
        }
    }

    func finish(_ key: Key, batch: Int) {
        sequences[key]?.stages[batch] = .finished
        sequences[key]?.touched = .now
    }

    func stage(_ key: Key, batch: Int) -> Stage? { sequences[key]?.stages[batch] }

    /// Returns once batch `batch - 1` of the sequence finished here (stored or refused), or when it
    /// was not seen to begin here within `unseen`, or after `limit` in any case.
    nonisolated func waitForTurn(
        _ key: Key, batch: Int, unseen: Duration = .milliseconds(500), limit: Duration = .seconds(30)
    ) async {
        guard batch > 0 else { return }
        let start = ContinuousClock.now
        while !Task.isCancelled {
            let waited = start.duration(to: .now)
            switch await stage(key, batch: batch - 1) {
            case .finished?: return
            case .running?: if waited > limit { return }
            case nil: if waited > unseen { return }
            }
            try? await Task.sleep(for: .milliseconds(2))
        }
    }
}
