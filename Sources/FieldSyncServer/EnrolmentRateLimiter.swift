import FieldSyncProtocol

/// The enrolment rate limit (spec 15.5): after `limit` failed attempts from one source address
/// within `window` seconds, further attempts from it are refused until the oldest of them is that
/// old. The failures live in the storage (``EnrolmentAttemptStorage``), so that several `serve`
/// instances sharing it enforce one limit; each is kept only as long as the window needs it, and
/// at most `cap` addresses are tracked.
struct EnrolmentRateLimiter: Sendable {
    let limit: Int
    let window: Double
    let cap: Int

    init(limit: Int = 5, window: Double = 15 * 60, cap: Int = Self.cap) {
        self.limit = limit
        self.window = window
        self.cap = cap
    }

    /// The most addresses tracked at once.
    static let cap = 4096

    /// Whether an attempt from `address` may proceed at time `now` (seconds).
    func allows(_ address: String, now: Double, in storage: some EnrolmentAttemptStorage) async throws -> Bool {
        try await storage.enrolmentFailures(from: address, since: Self.milliseconds(now - window)) < limit
    }

    func recordFailure(_ address: String, now: Double, in storage: some EnrolmentAttemptStorage) async throws {
        try await storage.recordEnrolmentFailure(
            from: address, at: Self.milliseconds(now), forgetBefore: Self.milliseconds(now - window), cap: cap)
    }

    static func milliseconds(_ seconds: Double) -> Int64 { Int64((seconds * 1000).rounded(.down)) }
}
