import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore
import Foundation
import Logging

/// What one sync did, for the summary line and `sync --json`.
public struct SyncReport: Sendable, Equatable {
    public var pushed = 0
    public var pulled = 0
    public var newConflicts = 0
    public var pushBatches = 0
    public var pullBatches = 0
    public var durationSeconds = 0.0
    /// Set when the replica found that the server knew more of its own node's revisions than it did
    /// (it was restored from a backup) and took a new node id.
    public var retiredNode: NodeID?
    public var newNode: NodeID?
    public var retries = 0

    public init() {}
}

/// A progress event, for a terminal progress line.
public enum SyncProgress: Sendable {
    case pushed(total: Int)
    case pulled(total: Int)
    case retrying(attempt: Int, delaySeconds: Double, reason: String)
    case nodeRetired(old: NodeID, new: NodeID)
}

/// Runs one sync: push what the server lacks, then pull what the replica lacks, batch by batch.
///
/// Which revisions to send is always derived from the knowledge the peer reports, never from a
/// cursor remembered here, so a server restored from an old backup gets everything again. Each
/// pulled batch is committed in one transaction, so an interrupted sync resumes where it stopped.
public struct SyncDriver: Sendable {
    public var store: ReplicaStore
    public var transport: any SyncTransport
    public var batchSize: Int
    public var retries: Int
    public var initialBackoffSeconds: Double
    public var logger: Logger

    public init(
        store: ReplicaStore, transport: any SyncTransport, batchSize: Int = SyncProtocol.defaultBatchRevisions, retries: Int = 3,
        initialBackoffSeconds: Double = 0.5, logger: Logger = Logger(label: "fieldsync.sync")
    ) {
        self.store = store
        self.transport = transport
        self.batchSize = min(max(1, batchSize), SyncProtocol.maximumBatchRevisions)
        self.retries = max(0, retries)
        self.initialBackoffSeconds = initialBackoffSeconds
        self.logger = logger
    }

    public func run(progress: @Sendable (SyncProgress) -> Void = { _ in }) async throws -> SyncReport {
        let started = ContinuousClock.now
        var report = SyncReport()
        var serverKnowledge = try await withRetry(&report, progress) { try await transport.knowledge() }.knowledge

        // A replica restored from a backup must never reuse a dot: if the server holds more of this
        // node's revisions than the replica, take a new node id before writing or pushing anything.
        let identity = try store.identity()
        let local = try store.knowledge()
        if serverKnowledge[identity.node] > local[identity.node] {
            // Register the new id with the server first: if that fails, nothing changed here and the
            // next sync detects the same situation again.
            let fresh = NodeID.random()
            try await withRetry(&report, progress) { try await transport.registerNode(fresh) }
            try store.retireNodeID(
                reason: "the server held revisions \(local[identity.node] + 1)…\(serverKnowledge[identity.node]) of this node that the replica lacked (restored from a backup?)",
                now: Self.now(), replacement: fresh)
            report.retiredNode = identity.node
            report.newNode = fresh
            progress(.nodeRetired(old: identity.node, new: fresh))
            logger.notice("replica node id retired", metadata: ["old": "\(identity.node)", "new": "\(fresh)"])
        }
        let current = try store.identity()
        let node = current.node
        // A node id taken offline (a restored backup re-keys before its first write) is not yet
        // known to the server: register it for this device before pushing under it.
        if !current.retiredNodes.isEmpty, serverKnowledge[node] == 0, try store.knowledge()[node] > 0 {
            try await withRetry(&report, progress) { try await transport.registerNode(node) }
            logger.notice("registered the replica's new node id", metadata: ["node": "\(node)"])
        }

        var pushBatchSize = batchSize
        while true {
            let page = try store.missing(from: serverKnowledge, limit: pushBatchSize)
            if page.texts.isEmpty { break }
            let response: PushResponse
            do {
                response = try await withRetry(&report, progress) { try await transport.push(node: node, revisionTexts: page.texts) }
            } catch SyncError.rejected(let status, let error) where error.code == .tooLarge && page.texts.count > 1 {
                // The server counts bytes as well as revisions: long narratives need smaller batches.
                pushBatchSize = max(1, page.texts.count / 2)
                logger.info("push batch too large; halving", metadata: ["status": "\(status)", "batch": "\(pushBatchSize)"])
                continue
            }
            guard response.knowledge != serverKnowledge || response.accepted > 0 || response.duplicates > 0 else {
                throw SyncError.badResponse("the server accepted nothing of a push batch and its knowledge did not change")
            }
            report.pushed += response.accepted
            report.pushBatches += 1
            serverKnowledge = response.knowledge
            progress(.pushed(total: report.pushed))
            if !page.more { break }
        }

        // Nothing to pull when the replica already has everything the server reported: a no-op sync
        // is then one request, which matters on a weak link.
        if !(try store.knowledge()).covers(serverKnowledge) {
            try await pull(&report, progress)
        }
        let elapsed = started.duration(to: .now).components
        report.durationSeconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
        return report
    }

    /// Pulls batch after batch. Each batch is checked against the server's key directory and stored
    /// in one transaction; while it is stored, the next one is already requested with the knowledge
    /// the replica will have once it is, so the server's read and the transfer overlap the local write.
    func pull(_ report: inout SyncReport, _ progress: @Sendable (SyncProgress) -> Void) async throws {
        let directory = try await withRetry(&report, progress) { try await transport.keys() }
        let keys = Array(directory.entries.values)
        var prefetched: (knowledge: VersionVector, response: Task<PullResponse, any Error>)?
        defer { prefetched?.response.cancel() }
        while true {
            let knowledge = try store.knowledge()
            let response = try await withRetry(&report, progress) {
                if let ahead = prefetched, ahead.knowledge == knowledge {
                    prefetched = nil
                    // The prefetch is an unstructured task: pass a cancellation of this sync on to it.
                    return try await withTaskCancellationHandler {
                        try await ahead.response.value
                    } onCancel: {
                        ahead.response.cancel()
                    }
                }
                prefetched?.response.cancel()
                prefetched = nil
                return try await transport.pull(PullRequest(knowledge: knowledge, limit: batchSize))
            }
            if response.revisions.isEmpty { break }
            if response.more {
                var expected = knowledge
                for revision in response.revisions { expected.add(revision.dot) }
                let request = PullRequest(knowledge: expected, limit: batchSize)
                prefetched = (expected, Task { [transport] in try await transport.pull(request) })
            }
            let outcome: ReceiveOutcome
            do {
                outcome = try store.receiveVerified(response.revisions, learning: keys, now: Self.now())
            } catch let error as ProtocolError {
                throw SyncError.badResponse("a pulled batch was rejected: \(error.message)")
            }
            report.pulled += outcome.accepted
            report.newConflicts += outcome.newConflicts
            report.pullBatches += 1
            progress(.pulled(total: report.pulled))
            if !response.more { break }
        }
    }

    /// Retries transient failures with exponential backoff (0.5 s, 1 s, 2 s, ... by default).
    func withRetry<T: Sendable>(
        _ report: inout SyncReport, _ progress: @Sendable (SyncProgress) -> Void, _ operation: () async throws -> T
    ) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await operation()
            } catch let error as SyncError where error.isTransient && attempt < retries {
                attempt += 1
                report.retries += 1
                let delay = initialBackoffSeconds * pow(2, Double(attempt - 1))
                progress(.retrying(attempt: attempt, delaySeconds: delay, reason: error.description))
                try await Task.sleep(for: .milliseconds(Int(delay * 1000)))
            }
        }
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}
