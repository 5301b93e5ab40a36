import FieldSyncCore
import FieldSyncProtocol

/// Orders the batches of a device's pipelined push on this instance (spec 8.3.1): batch k+1 of a
/// sequence is verified while batch k is committed, then waits for k to finish before it is stored.
///
/// Only order, never correctness, rests on it: the store refuses a batch that does not follow what
/// it holds (a causal gap), and the client then goes on one batch at a time. So a batch waits only
/// for a predecessor this instance has seen begin (another instance may have taken it), and never
/// for long. What it remembers is bounded: a few batches per sequence, a few sequences and waiters
/// per device, and a few thousand sequences in all.
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
        /// The highest batch begun: only the few below it are remembered.
        var top = 0
        var touched: ContinuousClock.Instant
    }

    private var sequences: [Key: Sequence] = [:]
    private var waiting: [NodeID: Int] = [:]
    /// Sequences remembered at most, in all and per device; the least recently used goes first.
    let capacity: Int
    let perDevice: Int
    /// Batches of one device waiting for their turn at once; more go ahead without waiting.
    let waitersPerDevice: Int
    /// Batches remembered below the highest one begun in a sequence.
    static let window = 4

    init(capacity: Int = 4096, perDevice: Int = 8, waitersPerDevice: Int = 4) {
        self.capacity = capacity
        self.perDevice = perDevice
        self.waitersPerDevice = waitersPerDevice
    }

    func begin(_ key: Key, batch: Int) {
        var sequence = sequences[key] ?? Sequence(touched: .now)
        sequence.touched = .now
        // Below the window nothing is recorded: a batch after it then counts as unseen.
        if batch >= sequence.top - Self.window {
            sequence.stages[batch] = .running
            sequence.top = max(sequence.top, batch)
            sequence.stages = sequence.stages.filter { $0.key >= sequence.top - Self.window }
        }
        let isNew = sequences[key] == nil
        sequences[key] = sequence
        guard isNew else { return }
        let own = sequences.filter { $0.key.device == key.device }
        if own.count > perDevice, let oldest = own.min(by: { $0.value.touched < $1.value.touched })?.key {
            sequences[oldest] = nil
        }
        if sequences.count > capacity, let oldest = sequences.min(by: { $0.value.touched < $1.value.touched })?.key {
            sequences[oldest] = nil
        }
    }

    func finish(_ key: Key, batch: Int) {
        guard sequences[key]?.stages[batch] != nil else { return }
        sequences[key]?.stages[batch] = .finished
        sequences[key]?.touched = .now
    }

    func stage(_ key: Key, batch: Int) -> Stage? { sequences[key]?.stages[batch] }

    /// How many batches of the sequence are remembered.
    func rememberedBatches(_ key: Key) -> Int { sequences[key]?.stages.count ?? 0 }

    /// Takes a waiting place for `device`, or returns false when it already has its share.
    private func enter(_ device: NodeID) -> Bool {
        guard waiting[device, default: 0] < waitersPerDevice else { return false }
        waiting[device, default: 0] += 1
        return true
    }

    private func leave(_ device: NodeID) {
        waiting[device, default: 1] -= 1
        if waiting[device] == 0 { waiting[device] = nil }
    }

    /// Returns once batch `batch - 1` of the sequence finished here (stored or refused), or when it
    /// was not seen to begin here within `unseen`, or after `limit` in any case; at once when the
    /// device already has its share of batches waiting.
    nonisolated func waitForTurn(
        _ key: Key, batch: Int, unseen: Duration = .milliseconds(500), limit: Duration = .seconds(30)
    ) async {
        guard batch > 0, await enter(key.device) else { return }
        let start = ContinuousClock.now
        var pause = Duration.milliseconds(1)
        while !Task.isCancelled {
            let waited = start.duration(to: .now)
            let stage = await stage(key, batch: batch - 1)
            if stage == .finished || (stage == .running && waited > limit) || (stage == nil && waited > unseen) { break }
            try? await Task.sleep(for: pause)
            pause = min(pause * 2, .milliseconds(16))
        }
        await leave(key.device)
    }
}
