import Dispatch
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
    /// Revisions of this replica's own branch authored again under the new node id after a fork.
    public var reminted = 0
    /// Relayed revisions the server kept aside as fork evidence instead of merging them.
    public var setAside = 0
    /// Revisions of other nodes held here that the central node holds otherwise (their author forked
    /// and re-minted): kept aside as evidence here and replaced by the central node's.
    public var replaced = 0
    /// Revisions from bundles that were held until the central node vouched for them, and now were.
    public var released = 0
    /// Revisions a bundle brought, merged earlier, that the central node would refuse: taken out of
    /// the log into the held ones.
    public var heldBack = 0
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
        var contested = Set<NodeID>()
        var serverKnowledge: VersionVector
        if let pushed = try await pushFromRememberedKnowledge(&contested, &report, progress) {
            serverKnowledge = pushed
        } else {
            serverKnowledge = try await prepareAndPush(&contested, &report, progress)
        }

        // Nothing to pull when the replica already has everything the server reported: a no-op sync
        // is then one request, which matters on a weak link.
        if !(try store.knowledge()).covers(serverKnowledge) {
            try await pull(&report, &contested, progress)
            // The pull may have brought what held revisions were waiting for, or the held ones
            // themselves (then they are dropped).
            if try store.heldRevisionCount() > 0 {
                let released = try store.releaseHeld(now: Self.now())
                report.released += released
                if released > 0 { try await push(&serverKnowledge, &contested, &report, progress) }
            }
        }
        // Where this replica holds another history of some node than the server (a bundle brought a
        // forked replica's revisions), the server's wins; the others stay as evidence.
        var rounds = 0
        while !contested.isEmpty, rounds < 4 {
            let nodes = contested
            contested = []
            rounds += 1
            if try await repair(nodes, serverKnowledge, &report, progress) {
                serverKnowledge = try await withRetry(&report, progress) { try await transport.knowledge() }.knowledge
                try await push(&serverKnowledge, &contested, &report, progress)
                try await pull(&report, &contested, progress)
            }
        }
        // What the central node holds now: what `wipe` would not lose.
        try store.rememberCentralKnowledge(serverKnowledge)
        let elapsed = started.duration(to: .now).components
        report.durationSeconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
        return report
    }

    /// The full way to a push: the fork check (``checkHistory(_:_:)``), bundled histories compared
    /// with the server's, held and stranded revisions settled, then the push. Returns the server's
    /// knowledge after it.
    func prepareAndPush(_ contested: inout Set<NodeID>, _ report: inout SyncReport, _ progress: @Sendable (SyncProgress) -> Void)
        async throws -> VersionVector
    {
        var serverKnowledge = try await checkHistory(&report, progress)
        // Histories that came by bundle are compared with the server's before anything built on
        // them is pushed.
        try await checkUnconfirmed(&contested, &report, progress)
        if !contested.isEmpty, try await repair(contested, serverKnowledge, &report, progress) {
            serverKnowledge = try await withRetry(&report, progress) { try await transport.knowledge() }.knowledge
        }
        contested = []
        // What bundles brought is judged with the directory as it is now (spec 13, step 4): held
        // revisions it vouches for now are released and pushed with the rest; bundled revisions
        // merged earlier that it would refuse (a device revoked since, a node or key it does not
        // vouch for) are held back, with whatever was built on them, and this replica's own work
        // built on them is re-minted to cover only what the central node can take.
        let local = try store.knowledge()
        let retiredTails = try store.identity().retiredNodes.filter { local[$0] > serverKnowledge[$0] }
        if try store.heldRevisionCount() > 0 || !store.unconfirmedNodes().isEmpty || !retiredTails.isEmpty {
            try await learnDirectory(&report, progress)
            // A retired node id of this replica's that was revoked (it enrolled again after a
            // revocation): its unpushed tail would be refused, so it is re-minted under a new id.
            let directory = try store.keyDirectory()
            for node in retiredTails where directory[node]?.revoked != nil {
                try await remint(
                    node, from: serverKnowledge[node] + 1,
                    reason:
                        "this replica's node \(node) was revoked before the central node received it from counter \(serverKnowledge[node] + 1)",
                    &report, progress)
                serverKnowledge = try await withRetry(&report, progress) { try await transport.knowledge() }.knowledge
            }
            report.released += try store.releaseHeld(now: Self.now())
            let refused = try store.refusedBundledRevisions(above: serverKnowledge)
            if !refused.isEmpty {
                let back = try store.holdBack(refused, now: Self.now())
                report.heldBack += back.held
                logger.notice("held back bundled revisions the central node would refuse", metadata: ["held": "\(back.held)"])
            }
        }
        // Own work that names revisions the log no longer holds (held back above, or in an earlier
        // sync whose re-mint did not complete) is re-minted first, so the push is never a causal gap.
        for stranded in try store.ownRevisionsBuiltOnMissing(above: serverKnowledge) {
            try await remint(
                stranded.node, from: stranded.from, capping: stranded.caps,
                reason:
                    "this replica's revisions from \(stranded.node):\(stranded.from) were built on revisions it no longer holds (held back or replaced); re-minted so they cover only what it holds",
                &report, progress)
            serverKnowledge = try await withRetry(&report, progress) { try await transport.knowledge() }.knowledge
        }
        do {
            try await push(&serverKnowledge, &contested, &report, progress)
        } catch SyncError.rejected(_, let error) where error.code == .fork && report.newNode == nil {
            // Another copy of this replica pushed under the same node id since the check (a clone):
            // check again, which now finds the fork and re-mints, then push what is left.
            serverKnowledge = try await checkHistory(&report, progress)
            try await push(&serverKnowledge, &contested, &report, progress)
        }
        return serverKnowledge
    }

    /// A sync with only this replica's own new work to send pushes it at once from what the central
    /// node held at the last sync, without asking first: one round trip instead of two. The central
    /// node checks the rest: if it holds less of this node than remembered (restored from a backup)
    /// the push is a causal gap, if it holds other revisions under these counters (this replica was
    /// restored or cloned) it is a fork; either way nothing was stored, and the full way runs.
    /// Returns nil whenever the full way is needed: nothing sent, the push refused, or the answers
    /// showing that the central node holds less of another node than remembered.
    func pushFromRememberedKnowledge(
        _ contested: inout Set<NodeID>, _ report: inout SyncReport, _ progress: @Sendable (SyncProgress) -> Void
    ) async throws -> VersionVector? {
        guard let original = try store.centralKnowledge() else { return nil }
        var remembered = original
        let batchesBefore = report.pushBatches
        let own = try store.identity().node
        let local = try store.knowledge()
        // Only own work since then, under a node id the central node already holds revisions of;
        // nothing relayed, held, unconfirmed or stranded that the full way would settle first.
        guard remembered[own] > 0, local[own] > remembered[own],
            local.nodes.allSatisfy({ $0 == own || local[$0] <= remembered[$0] }),
            try store.heldRevisionCount() == 0, try store.unconfirmedNodes().isEmpty,
            try store.ownRevisionsBuiltOnMissing(above: remembered).isEmpty
        else { return nil }
        do {
            try await push(&remembered, &contested, &report, progress)
        } catch SyncError.rejected(_, let error) where [.causalGap, .fork].contains(error.code) {
            // Nothing of the refused batch was stored; the full way re-checks the history (and
            // re-mints a fork) before it pushes the rest.
            logger.debug("the central node holds otherwise than remembered; asking first", metadata: ["reason": "\(error.code.rawValue)"])
            return nil
        }
        // The central node holds less of another node than remembered (restored from a backup that
        // lost what colleagues pushed): the full way sends it what it lacks.
        guard remembered.covers(original), report.pushBatches > batchesBefore else { return nil }
        return remembered
    }

    /// Asks for the server's knowledge together with its chain hash of this replica's node, and
    /// makes sure that no dot of this replica is ever reused or contradicted (spec 13, steps 1-3):
    /// - the histories differ (a restore that then wrote, or a clone): re-mint this replica's branch
    ///   from the first counter where they differ;
    /// - the server holds more of this node than the replica (a restore): take a new node id;
    /// - a node id taken offline (a restored backup re-keys on its first write): register it.
    /// Returns the server's knowledge as it stands afterwards.
    func checkHistory(_ report: inout SyncReport, _ progress: @Sendable (SyncProgress) -> Void) async throws -> VersionVector {
        let identity = try store.identity()
        let node = identity.node
        let local = try store.knowledge()
        let probe = local[node] > 0 ? Dot(node: node, counter: local[node]) : nil
        let first = try await withRetry(&report, progress) { try await transport.knowledge(probing: probe) }
        var serverKnowledge = first.knowledge

        if let chain = first.chain, probe != nil, chain.node == node, chain.counter > 0, chain.counter <= local[node],
            try store.chainHash(at: Dot(node: node, counter: chain.counter)) != chain.hash
        {
            let fork = try await firstDifference(of: node, below: chain.counter, &report, progress)
            try await remint(
                node, from: fork,
                reason:
                    "the server holds other revisions than this replica under \(node):\(fork) and after (restored from a copy, or cloned)",
                &report, progress)
            serverKnowledge = try await withRetry(&report, progress) { try await transport.knowledge() }.knowledge
        } else if serverKnowledge[node] > local[node] {
            // The replica's history is a prefix of the server's: restored, and nothing written since.
            // Register the new id with the server first: if that fails, nothing changed here and the
            // next sync detects the same situation again.
            let fresh = try store.newNodeID()
            let nonce = try store.nodeNonce(fresh)
            try await withRetry(&report, progress) { try await transport.registerNode(fresh, nonce: nonce) }
            try store.retireNodeID(
                reason:
                    "the server held revisions \(local[node] + 1)…\(serverKnowledge[node]) of this node that the replica lacked (restored from a backup?)",
                now: Self.now(), replacement: fresh)
            report.retiredNode = node
            report.newNode = fresh
            progress(.nodeRetired(old: node, new: fresh))
            logger.notice("replica node id retired", metadata: ["old": "\(node)", "new": "\(fresh)"])
        }

        let current = try store.identity()
        // A node id taken offline (a restored backup re-keys before its first write) is not yet
        // known to the server: register it for this device before pushing under it.
        if !current.retiredNodes.isEmpty, current.node != report.newNode, serverKnowledge[current.node] == 0,
            try store.knowledge()[current.node] > 0
        {
            let nonce = try store.nodeNonce(current.node)
            try await withRetry(&report, progress) { try await transport.registerNode(current.node, nonce: nonce) }
            logger.notice("registered the replica's new node id", metadata: ["node": "\(current.node)"])
        }
        return serverKnowledge
    }

    /// The first counter at which the server's history of `node` differs from this replica's,
    /// knowing that they differ at `counter`. Chain hashes cover a node's whole history up to
    /// them, so equality is monotone and a binary search over probes finds it.
    func firstDifference(
        of node: NodeID, below counter: UInt64, _ report: inout SyncReport, _ progress: @Sendable (SyncProgress) -> Void
    ) async throws -> UInt64 {
        var same: UInt64 = 0
        var different = counter
        while different - same > 1 {
            let middle = same + (different - same) / 2
            let answer = try await withRetry(&report, progress) { try await transport.knowledge(probing: Dot(node: node, counter: middle)) }
            guard let chain = answer.chain, chain.node == node, chain.counter == middle else {
                throw SyncError.badResponse("the server did not answer the chain probe of \(node):\(middle)")
            }
            if try store.chainHash(at: Dot(node: node, counter: middle)) == chain.hash { same = middle } else { different = middle }
        }
        return different
    }

    /// Registers a fresh node id, then re-mints `node`'s branch (this replica's current or a retired
    /// id) from `fork` under it. Registration comes first: if it fails, nothing changed here and the
    /// next sync finds the same situation.
    func remint(
        _ node: NodeID, from fork: UInt64, capping: [NodeID: UInt64] = [:], reason: String, _ report: inout SyncReport,
        _ progress: @Sendable (SyncProgress) -> Void
    ) async throws {
        let fresh = try store.newNodeID()
        let nonce = try store.nodeNonce(fresh)
        try await withRetry(&report, progress) { try await transport.registerNode(fresh, nonce: nonce) }
        let count = try store.remint(
            node, from: fork, replacement: fresh, capping: capping, reason: "\(reason); re-minted as \(fresh)", now: Self.now())
        report.reminted += count
        report.retiredNode = report.retiredNode ?? node
        report.newNode = fresh
        progress(.nodeRetired(old: node, new: fresh))
        logger.notice(
            "re-minted a forked branch", metadata: ["old": "\(node)", "new": "\(fresh)", "from": "\(fork)", "reminted": "\(count)"])
    }

    /// For each node whose revisions came by bundle: when the server holds as far, compare its hash
    /// there with this replica's; the same means confirmed, another means contested.
    func checkUnconfirmed(_ contested: inout Set<NodeID>, _ report: inout SyncReport, _ progress: @Sendable (SyncProgress) -> Void)
        async throws
    {
        let own = try store.identity().node
        for dot in try store.unconfirmedNodes() where dot.node != own {
            let answer = try await withRetry(&report, progress) { try await transport.knowledge(probing: dot) }
            guard let chain = answer.chain, chain.node == dot.node, chain.counter <= dot.counter else { continue }
            if chain.counter > 0, try store.chainHash(at: Dot(node: dot.node, counter: chain.counter)) != chain.hash {
                contested.insert(dot.node)
            } else if chain.counter == dot.counter {
                try store.confirm(dot)
            }
        }
    }

    /// For each node whose history here differs from the server's, finds the first counter where
    /// they part, then: for another node, takes the server's history of it from there and re-mints
    /// this replica's own unpushed work built on the replaced part (so that it supersedes nothing
    /// its author never saw); for a retired node id of this replica's own, re-mints that branch.
    /// The current node id is the fork check's (`checkHistory`). Returns whether anything changed.
    func repair(
        _ nodes: Set<NodeID>, _ serverKnowledge: VersionVector, _ report: inout SyncReport, _ progress: @Sendable (SyncProgress) -> Void
    ) async throws -> Bool {
        var changed = false
        for node in nodes.sorted() {
            let identity = try store.identity()
            guard node != identity.node else { continue }
            let local = try store.knowledge()[node]
            guard local > 0 else { continue }
            let answer = try await withRetry(&report, progress) { try await transport.knowledge(probing: Dot(node: node, counter: local)) }
            guard let chain = answer.chain, chain.node == node, chain.counter > 0, chain.counter <= local,
                try store.chainHash(at: Dot(node: node, counter: chain.counter)) != chain.hash
            else {
                if let chain = answer.chain, chain.counter == local { try store.confirm(Dot(node: node, counter: local)) }
                continue
            }
            let fork = try await firstDifference(of: node, below: chain.counter, &report, progress)
            if identity.retiredNodes.contains(node) {
                try await remint(
                    node, from: fork,
                    reason: "the server holds other revisions than this replica under its retired node \(node):\(fork) and after", &report,
                    progress)
                changed = true
                continue
            }
            let before = try store.knowledge()[node]
            try store.adoptServerHistory(of: node, from: fork, now: Self.now())
            report.replaced += Int(before - fork + 1)
            logger.notice("took the central node's history of a forked node", metadata: ["node": "\(node)", "from": "\(fork)"])
            changed = true
            let own = identity.node
            if let first = try store.firstOwnRevision(dependingOn: node, from: fork, above: serverKnowledge[own]) {
                try await remint(
                    own, from: first, capping: [node: fork - 1],
                    reason:
                        "this replica's unpushed revisions from \(own):\(first) were built on revisions of \(node) that the central node holds otherwise; re-minted so they supersede only what their author saw",
                    &report, progress)
            }
        }
        return changed
    }

    /// Pushes batch after batch of what the server lacks, raising `serverKnowledge` as it goes.
    func push(
        _ serverKnowledge: inout VersionVector, _ contested: inout Set<NodeID>, _ report: inout SyncReport,
        _ progress: @Sendable (SyncProgress) -> Void
    ) async throws {
        let node = try store.identity().node
        // The first page, when the pipeline read it and found it the only one.
        var ready: MissingRevisions?
        if transport.pipelinesPushes { ready = try await pushPipelined(node, &serverKnowledge, &contested, &report, progress) }
        // One batch at a time: all of a push without a pipeline, or what is left after one stopped.
        var pushBatchSize = batchSize
        while true {
            let page = try ready ?? store.missing(from: serverKnowledge, limit: pushBatchSize)
            ready = nil
            if page.texts.isEmpty { break }
            let response: PushResponse
            do {
                response = try await withRetry(&report, progress) { try await transport.push(node: node, revisionTexts: page.texts) }
            } catch SyncError.rejected(let status, let error) where error.code == .tooLarge && page.texts.count > 1 {
                // The server counts bytes as well as revisions: long narratives need smaller batches.
                pushBatchSize = max(1, page.texts.count / 2)
                logger.debug("push batch too large; halving", metadata: ["status": "\(status)", "batch": "\(pushBatchSize)"])
                continue
            }
            guard response.knowledge != serverKnowledge || response.accepted > 0 || response.duplicates > 0 || !response.setAside.isEmpty
            else {
                throw SyncError.badResponse("the server accepted nothing of a push batch and its knowledge did not change")
            }
            report.pushed += response.accepted
            report.setAside += response.setAside.count
            contested.formUnion(response.setAside.map(\.node))
            report.pushBatches += 1
            serverKnowledge = response.knowledge
            // A batch whose revisions were all set aside leaves the server's knowledge as it was; the
            // next page would be the same one. Anything after it waits for the next sync.
            if response.accepted == 0 && response.duplicates == 0 { break }
            progress(.pushed(total: report.pushed))
            if !page.more { break }
        }
    }

    /// A push batch sent ahead: its request runs while the batch before it is committed.
    struct BatchInFlight {
        /// What the server holds once this batch is stored whole: where the next batch starts.
        var expected: VersionVector
        var more: Bool
        var response: Task<PushResponse, any Error>
    }

    /// Pushes with two batches in flight (spec 8.3.1): batch k+1 is read and sent, numbered in one
    /// sequence, while batch k is verified and committed, so the central node verifies k+1 meanwhile
    /// and commits it right after k. Batch k+1 is read as if k were stored whole. Whenever anything
    /// else happens (a batch set aside, refused as a gap or as too large, a transient failure), the
    /// batches in flight are let finish, what they stored is counted, and the caller goes on one
    /// batch at a time from the knowledge the server last reported. Any other refusal is thrown, as
    /// one batch at a time would.
    func pushPipelined(
        _ node: NodeID, _ serverKnowledge: inout VersionVector, _ contested: inout Set<NodeID>, _ report: inout SyncReport,
        _ progress: @Sendable (SyncProgress) -> Void
    ) async throws -> MissingRevisions? {
        let first = try store.missing(from: serverKnowledge, limit: batchSize)
        // A single batch needs no pipeline, and a page without its dots cannot say where the next
        // starts: it is handed back, for the caller to send as it is.
        guard first.more, first.dots.count == first.texts.count else { return first }
        var sequence = PushSequence.random()
        let batchesBefore = report.pushBatches
        var inFlight: [BatchInFlight] = []
        defer { for batch in inFlight { batch.response.cancel() } }
        func send(_ page: MissingRevisions, after knowledge: VersionVector) -> BatchInFlight {
            var expected = knowledge
            for dot in page.dots { expected.add(dot) }
            let numbered = sequence
            sequence = sequence.next
            let texts = page.texts
            return BatchInFlight(
                expected: expected, more: page.more,
                response: Task { [transport] in try await transport.push(node: node, revisionTexts: texts, sequence: numbered) })
        }
        func count(_ response: PushResponse) {
            report.pushed += response.accepted
            report.setAside += response.setAside.count
            contested.formUnion(response.setAside.map(\.node))
            report.pushBatches += 1
            // A device's batches are stored in order and answered in order: the newest answer is
            // what the server holds (never merged with what was assumed).
            serverKnowledge = response.knowledge
            progress(.pushed(total: report.pushed))
        }
        // Lets the batches still in flight finish (a refusal there is expected: they were read as if
        // the one before were stored), counting what they stored.
        func settle() async {
            let tasks = inFlight.map(\.response)
            inFlight = []
            await withTaskCancellationHandler {
                for task in tasks { if let response = try? await task.value { count(response) } }
            } onCancel: {
                for task in tasks { task.cancel() }
            }
        }
        inFlight.append(send(first, after: serverKnowledge))
        while let head = inFlight.first {
            if inFlight.count == 1, head.more {
                let next = try store.missing(from: head.expected, limit: batchSize)
                guard next.dots.count == next.texts.count else { break }
                if !next.texts.isEmpty { inFlight.append(send(next, after: head.expected)) }
            }
            inFlight.removeFirst()
            let response: PushResponse
            do {
                response = try await withTaskCancellationHandler {
                    try await head.response.value
                } onCancel: {
                    head.response.cancel()
                }
            } catch SyncError.rejected(let status, let refusal) where refusal.code == .causalGap && report.pushBatches == batchesBefore {
                // The first batch itself does not follow what the server holds: no pipeline caused
                // that, and sending it again one at a time would only be refused again.
                await settle()
                throw SyncError.rejected(status: status, error: refusal)
            } catch let error as SyncError where Self.endsPipeline(error) {
                logger.debug("pipelined push stopped; going on one batch at a time", metadata: ["reason": "\(error)"])
                await settle()
                return nil
            }
            guard response.knowledge != serverKnowledge || response.accepted > 0 || response.duplicates > 0 || !response.setAside.isEmpty
            else {
                throw SyncError.badResponse("the server accepted nothing of a push batch and its knowledge did not change")
            }
            count(response)
            // Something of it was set aside: the batch after it was read as if it were stored.
            if !response.knowledge.covers(head.expected) {
                await settle()
                return nil
            }
        }
        await settle()
        return nil
    }

    /// Refusals after which a pipelined push goes on one batch at a time: failures worth retrying,
    /// a gap (a batch that reached the central node before the one it follows, or followed one that
    /// failed) and a batch too large for the server's byte limit.
    static func endsPipeline(_ error: SyncError) -> Bool {
        if error.isTransient { return true }
        if case .rejected(_, let refusal) = error { return [.causalGap, .tooLarge, .busy].contains(refusal.code) }
        return false
    }

    /// Learns the central node's key directory now (only if it changed since last learned).
    func learnDirectory(_ report: inout SyncReport, _ progress: @Sendable (SyncProgress) -> Void) async throws {
        let known = try store.directoryTag()
        guard let answer = try await withRetry(&report, progress, { try await transport.keys(unlessTagged: known) }) else { return }
        do {
            try store.learnDirectory(answer.directory, tag: answer.tag)
        } catch let error as ProtocolError {
            throw SyncError.badResponse("the key directory was rejected: \(error.message)")
        }
    }

    /// Pulls batch after batch. Each batch is checked against the server's key directory and stored
    /// in one transaction. While batch k is stored, batch k+1 (requested as soon as batch k arrived,
    /// with the knowledge the replica will have once k is stored) has its signatures verified on the
    /// other cores, and batch k+2 is requested as soon as k+1 arrives. So the server's read, the
    /// transfer, the decoding and the Ed25519 checks all overlap the local write. At most three
    /// pages are in hand: the one being written, the one being checked and the one on its way; one
    /// request is in flight at a time.
    func pull(_ report: inout SyncReport, _ contested: inout Set<NodeID>, _ progress: @Sendable (SyncProgress) -> Void) async throws {
        // The directory only when it changed since this replica learned it (an entity tag): with
        // thousands of enrolled nodes it is the largest thing a small sync would otherwise move.
        let known = try store.directoryTag()
        let answer = try await withRetry(&report, progress) { try await transport.keys(unlessTagged: known) }
        var keys = answer.map { Array($0.directory.entries.values) } ?? []
        var source = KeySource.centralNode(serverKey: answer?.directory.serverKey)
        var tag = answer?.tag
        var prefetched: (knowledge: VersionVector, page: Task<PulledPage, any Error>)?
        defer { prefetched.map { Self.discard($0.page) } }
        // The request for the page after a prefetched one, sent when that one arrived: handed on at
        // once to the next prefetch, and cancelled with the pull if it never is.
        var requested: RequestedPage?
        defer { requested?.response.cancel() }
        // The keys pages fetched ahead are verified with: what this replica holds, read once, and what
        // this pull learns. A key here is only a hint: the transaction takes a signature checked ahead
        // only if it verified with the key the replica holds for that node by then.
        var keysAhead: KeyDirectory?
        while true {
            let knowledge = try store.knowledge()
            let page = try await withRetry(&report, progress) {
                if let ahead = prefetched, ahead.knowledge == knowledge {
                    prefetched = nil
                    // The prefetch is an unstructured task: pass a cancellation of this sync on to it.
                    return try await withTaskCancellationHandler {
                        try await ahead.page.value
                    } onCancel: {
                        ahead.page.cancel()
                    }
                }
                prefetched.map { Self.discard($0.page) }
                prefetched = nil
                return PulledPage(
                    response: try await transport.pull(PullRequest(knowledge: knowledge, limit: batchSize)), checked: .none, next: nil)
            }
            requested = page.next
            let response = page.response
            if response.revisions.isEmpty { break }
            // The page's certificates vouch for its authors too, for nodes the directory did not name.
            let named = Set(keys.map(\.node))
            let certified = response.certificates.filter { !named.contains($0.node) }.map { KeyEntry(certificate: $0) }
            if response.more {
                var expected = knowledge
                for revision in response.revisions { expected.add(revision.dot) }
                if keysAhead == nil { keysAhead = try store.signingKeys() }
                for key in keys + certified where keysAhead?[key.node] == nil { keysAhead?.entries[key.node] = key }
                // The request sent when this page arrived asked with the same knowledge: it was
                // computed from the same page. Otherwise (this page was fetched here) ask now.
                let next: RequestedPage
                if let sent = requested, sent.knowledge == expected {
                    next = sent
                } else {
                    requested?.response.cancel()
                    let request = PullRequest(knowledge: expected, limit: batchSize)
                    next = RequestedPage(knowledge: expected, response: Task { try await transport.pull(request) })
                }
                requested = nil
                prefetched = (expected, Self.fetchAhead(next, batchSize: batchSize, transport, keysAhead!))
            } else {
                requested?.response.cancel()
                requested = nil
            }
            let outcome: ReceiveOutcome
            do {
                outcome = try store.receiveVerified(
                    response.revisions, learning: keys + certified, from: source, directoryTag: tag, prechecked: page.checked,
                    now: Self.now())
                // Learned with the first batch, in its transaction: later batches verify against the store.
                keys = []
                source = .centralNode(serverKey: nil)
                tag = nil
            } catch let error as ProtocolError {
                throw SyncError.badResponse("a pulled batch was rejected: \(error.message)")
            }
            report.pulled += outcome.accepted
            contested.formUnion(outcome.contested.map(\.node))
            report.newConflicts += outcome.newConflicts
            report.pullBatches += 1
            progress(.pulled(total: report.pulled))
            if !response.more { break }
            // A batch that was all set aside would come again: stop, and let the caller reconcile.
            if outcome.accepted == 0 { break }
        }
    }

    /// A pulled page, with the signatures verified ahead of its transaction, and the request for
    /// the page after it when it was sent ahead too.
    struct PulledPage: Sendable {
        var response: PullResponse
        var checked: CheckedSignatures
        var next: RequestedPage?
    }

    /// Cancels a page fetched ahead that will not be used, and, if it had already arrived, the
    /// request it sent for the page after it.
    static func discard(_ page: Task<PulledPage, any Error>) {
        page.cancel()
        Task { (try? await page.value)?.next?.response.cancel() }
    }

    /// A pull request sent ahead: the knowledge the replica will have once the pages before it are
    /// stored, and the response on its way.
    struct RequestedPage: Sendable {
        var knowledge: VersionVector
        var response: Task<PullResponse, any Error>
    }

    /// Awaits the page `requested` and verifies its signatures with `keys` (and the page's own
    /// certificates), on every core the write of the current page leaves free. As soon as the page
    /// arrives, and before its check, the page after it is requested (`PulledPage.next`), so that the
    /// server's read and the transfer overlap the check. Cancelling the task cancels both requests.
    static func fetchAhead(_ requested: RequestedPage, batchSize: Int, _ transport: any SyncTransport, _ keys: KeyDirectory)
        -> Task<PulledPage, any Error>
    {
        Task {
            try await withTaskCancellationHandler {
                let response = try await requested.response.value
                try Task.checkCancellation()
                var next: RequestedPage?
                if response.more {
                    var expected = requested.knowledge
                    for revision in response.revisions { expected.add(revision.dot) }
                    let request = PullRequest(knowledge: expected, limit: batchSize)
                    next = RequestedPage(knowledge: expected, response: Task { try await transport.pull(request) })
                }
                let following = next?.response
                return try await withTaskCancellationHandler {
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
                            continuation.resume(returning: keys.checkSignatures(revisions, skipping: requested.knowledge))
                        }
                    }
                    do { try Task.checkCancellation() } catch {
                        following?.cancel()
                        throw error
                    }
                    return PulledPage(response: response, checked: checked, next: next)
                } onCancel: {
                    following?.cancel()
                }
            } onCancel: {
                requested.response.cancel()
            }
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
