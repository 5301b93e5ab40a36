import Synchronization

/// Counts failed enrolment attempts per source address: after `limit` failures within `window`
/// seconds, further attempts from that address are refused until the window passes.
final class EnrolmentRateLimiter: Sendable {
    struct Window {
        var start: Double
        var failures: Int
    }

    let limit: Int
    let window: Double
    private let windows = Mutex<[String: Window]>([:])

    init(limit: Int = 5, window: Double = 15 * 60) {
        self.limit = limit
        self.window = window
    }

    /// Whether an attempt from `address` may proceed at time `now` (seconds).
    func allows(_ address: String, now: Double) -> Bool {
        windows.withLock { windows in
            guard let entry = windows[address], now - entry.start < window else { return true }
            return entry.failures < limit
        }
    }

    /// The most addresses tracked at once.
    static let cap = 4096

    /// How many addresses it tracks (for tests).
    var trackedAddresses: Int { windows.withLock { $0.count } }

    func recordFailure(_ address: String, now: Double) {
        windows.withLock { windows in
            if var entry = windows[address], now - entry.start < window {
                entry.failures += 1
                windows[address] = entry
            } else {
                // Bounded memory against a spray of addresses: at the cap, forget closed windows, and
                // if that is not enough, the older half (a pass per `cap / 2` new addresses at most).
                if windows.count >= Self.cap {
                    windows = windows.filter { now - $0.value.start < window }
                    if windows.count >= Self.cap / 2 {
                        let keep = windows.sorted { $0.value.start > $1.value.start }.prefix(Self.cap / 2)
                        windows = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
                    }
                }
                windows[address] = Window(start: now, failures: 1)
            }
        }
    }
}
