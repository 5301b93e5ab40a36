import Dispatch
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore
import Foundation

extension SyncDriver {
    /// Pulls page after page. Each page is checked against the server's key directory and stored in
    /// a transaction of its own or, when all its signatures were verified ahead, together with the
    /// pages after it (up to ``pagesPerTransaction``). While pages are stored, the next one is
    /// already requested with the knowledge the replica will have once they are, decoded, and its
    /// signatures verified on the other cores, so the server's read, the transfer and the Ed25519
    /// checks overlap the local write. At most ``pagesPerTransaction`` pages are in hand, and the one
    /// fetched ahead.
    ///
    /// A page that was not wholly verified ahead (the first, or one with a signature that failed or
    /// a key not known yet) is never grouped: the pages before it are committed first, so a forged
    /// revision costs only its own page. When a group is refused as a whole, its pages are stored
    /// one by one, so that every page before the bad one stays committed, exactly as without groups.
    func pull(_ report: inout SyncReport, _ contested: inout Set<NodeID>, _ progress: @Sendable (SyncProgress) -> Void) async throws {
        // The directory only when it changed since this replica learned it (an entity tag): with
        // thousands of enrolled nodes it is the largest thing a small sync would otherwise move.
        let known = try store.directoryTag()
        let answer = try await withRetry(&report, progress) { try await transport.keys(unlessTagged: known) }
        var writer = PageWriter(
            keys: answer.map { Array($0.directory.entries.values) } ?? [], source: .centralNode(serverKey: answer?.directory.serverKey),
            tag: answer?.tag)
        var prefetched: (knowledge: VersionVector, page: Task<PulledPage, any Error>)?
        defer { prefetched?.page.cancel() }
        // The keys pages fetched ahead are verified with: what this replica holds, read once, and what
        // this pull learns. A key here is only a hint: the transaction takes a signature checked ahead
        // only if it verified with the key the replica holds for that node by then.
        var keysAhead: KeyDirectory?
        // What the replica holds once the pages in hand are stored.
        var knowledge = try store.knowledge()
        while true {
            let page: PulledPage
            do {
                page = try await withRetry(&report, progress) {
                    if let ahead = prefetched, ahead.knowledge == knowledge {
                        prefetched = nil
                        // The prefetch is an unstructured task: pass a cancellation of this sync on to it.
                        return try await withTaskCancellationHandler {
                            try await ahead.page.value
                        } onCancel: {
                            ahead.page.cancel()
                        }
                    }
                    prefetched?.page.cancel()
                    prefetched = nil
                    return PulledPage(
                        response: try await transport.pull(PullRequest(knowledge: knowledge, limit: batchSize)), checked: .none,
                        requested: knowledge)
                }
            } catch {
                // What is in hand is whole and verified: keep it, then report the failure.
                if !writer.isEmpty, !Task.isCancelled { _ = try? writer.flush(self, &report, &contested, progress) }
                throw error
            }
            let response = page.response
            if response.revisions.isEmpty {
                if !writer.isEmpty { _ = try writer.flush(self, &report, &contested, progress) }
                break
            }
            // The page's certificates vouch for its authors too, for nodes the directory did not name.
            let named = Set(writer.keys.map(\.node))
            let certified = response.certificates.filter { !named.contains($0.node) }.map { KeyEntry(certificate: $0) }
            var expected = knowledge
            for revision in response.revisions { expected.add(revision.dot) }
            if response.more {
                if keysAhead == nil { keysAhead = try store.signingKeys() }
                for key in writer.keys + writer.pendingKeys + certified where keysAhead?[key.node] == nil {
                    keysAhead?.entries[key.node] = key
                }
                prefetched = (expected, Self.fetchAhead(PullRequest(knowledge: expected, limit: batchSize), transport, keysAhead!))
            }
            if !page.isWhollyVerified {
                // Whatever waits is committed before a page that may be refused.
                if !writer.isEmpty { try writer.flush(self, &report, &contested, progress) }
            }
            writer.add(page, certified: certified)
            knowledge = expected
            if page.isWhollyVerified, response.more, writer.count < pagesPerTransaction { continue }
            let accepted = try writer.flush(self, &report, &contested, progress)
            knowledge = try store.knowledge()
            if !response.more { break }
            // A batch that was all set aside would come again: stop, and let the caller reconcile.
            if accepted == 0 { break }
        }
    }

    /// A pulled page, with the signatures verified ahead of its transaction.
    struct PulledPage: Sendable {
        var response: PullResponse
        var checked: CheckedSignatures
        /// The knowledge the page was requested with.
        var requested: VersionVector

        /// Every revision the request's knowledge did not cover verified ahead, each once: nothing
        /// the transaction checks can then refuse it for its signature.
        var isWhollyVerified: Bool {
            let new = response.revisions.filter { !requested.covers($0.dot) }
            return checked.count == new.count && Set(new.map(\.dot)).count == new.count
        }
    }

    /// The pages in hand, stored together in one transaction when flushed.
    struct PageWriter {
        /// Keys to learn with the first transaction of the pull (the central node's directory).
        var keys: [KeyEntry]
        var source: KeySource
        var tag: String?
        /// Each page in hand with the keys its certificates vouch for.
        private var pages: [(page: PulledPage, certified: [KeyEntry])] = []

        init(keys: [KeyEntry], source: KeySource, tag: String?) {
            self.keys = keys
            self.source = source
            self.tag = tag
        }

        var isEmpty: Bool { pages.isEmpty }
        var count: Int { pages.count }
        /// Keys the pages in hand vouch for with certificates.
        var pendingKeys: [KeyEntry] { pages.flatMap(\.certified) }

        mutating func add(_ page: PulledPage, certified: [KeyEntry]) { pages.append((page, certified)) }

        /// Stores the pages in hand in one transaction; when that is refused, page by page, so that
        /// each one before the refused page is committed. Returns how many revisions were accepted.
        mutating func flush(
            _ driver: SyncDriver, _ report: inout SyncReport, _ contested: inout Set<NodeID>, _ progress: @Sendable (SyncProgress) -> Void
        ) throws -> Int {
            let group = pages
            pages = []
            do {
                return try store(group, driver, &report, &contested, progress)
            } catch  where group.count > 1 {
                var accepted = 0
                for page in group { accepted += try store([page], driver, &report, &contested, progress) }
                return accepted
            }
        }

        private mutating func store(
            _ group: [(page: PulledPage, certified: [KeyEntry])], _ driver: SyncDriver, _ report: inout SyncReport,
            _ contested: inout Set<NodeID>, _ progress: @Sendable (SyncProgress) -> Void
        ) throws -> Int {
            guard !group.isEmpty else { return 0 }
            var prechecked = CheckedSignatures.none
            for item in group { prechecked = prechecked.merging(item.page.checked) }
            let outcome: ReceiveOutcome
            do {
                outcome = try driver.store.receiveVerified(
                    group.flatMap(\.page.response.revisions), learning: keys + group.flatMap(\.certified), from: source,
                    directoryTag: tag, prechecked: prechecked, now: SyncDriver.now())
            } catch let error as ProtocolError {
                throw SyncError.badResponse("a pulled batch was rejected: \(error.message)")
            }
            // Learned with the first transaction: later ones verify against the store.
            keys = []
            source = .centralNode(serverKey: nil)
            tag = nil
            report.pulled += outcome.accepted
            contested.formUnion(outcome.contested.map(\.node))
            report.newConflicts += outcome.newConflicts
            report.pullBatches += group.count
            progress(.pulled(total: report.pulled))
            return outcome.accepted
        }
    }

    /// Requests the next page and verifies its signatures with `keys` (and the page's own
    /// certificates), on every core the write of the current page leaves free.
    static func fetchAhead(_ request: PullRequest, _ transport: any SyncTransport, _ keys: KeyDirectory) -> Task<PulledPage, any Error> {
        Task {
            let response = try await transport.pull(request)
            try Task.checkCancellation()
            var directory = keys
            for certificate in response.certificates where directory[certificate.node] == nil {
                directory.entries[certificate.node] = KeyEntry(certificate: certificate)
            }
            // On Dispatch's threads (all cores), not Swift's shared pool: a page's Ed25519 checks are
            // tenths of a second of CPU that would hold up every other task of the process meanwhile.
            let revisions = response.revisions
            let keys = directory
            let checked = await withCheckedContinuation { continuation in
                DispatchQueue.global().async {
                    continuation.resume(returning: keys.checkSignatures(revisions, skipping: request.knowledge))
                }
            }
            try Task.checkCancellation()
            return PulledPage(response: response, checked: checked, requested: request.knowledge)
        }
    }
}
