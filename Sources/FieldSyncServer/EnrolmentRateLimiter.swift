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

    /// How many addresses it tracks (for tests).
    var trackedAddresses: Int { windows.withLock { $0.count } }

    func recordFailure(_ address: String, now: Double) {
        windows.withLock { windows in
            if var entry = windows[address], now - entry.start < window {
                entry.failures += 1
                windows[address] = entry
            } else {
                // Forget expired windows before adding one, so that a spray of addresses cannot grow
                // the map past what one window's worth of failures holds.
                if windows.count >= 1024 { windows = windows.filter { now - $0.value.start < window } }
                windows[address] = Window(start: now, failures: 1)
            }
        }
    }
}
