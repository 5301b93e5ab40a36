import FieldSyncBlobs
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore
import FieldSyncTestSupport
import Foundation
import Testing

/// The central node's storage contract (``SyncStorage``, ``AccountStorage``, ``AttachmentStorage``),
/// run on embedded SQLite and on PostgreSQL: both must give the same answers to the same calls.
@Suite struct CentralStorageConformanceTests {
    let dir: TemporaryDirectory
    init() throws { dir = try TemporaryDirectory("conformance") }

    func replica(_ name: String, node: NodeID? = nil) throws -> ReplicaStore {
        try ReplicaStore.create(at: dir.file("\(name)-\(UUID().uuidString.prefix(6)).sqlite"), name: name, node: node, now: 1)
    }

    static func store(_ storage: any CentralStorage, _ revisions: [Revision], owners: Set<NodeID> = []) async throws -> StoreOutcome {
        try await storage.store(revisions, from: owners) { _, _ in }
    }

    @Test(arguments: CentralBackend.allCases)
    func aBatchIsStoredOnceAndARePushIsHarmless(backend: CentralBackend) async throws {
        let rima = try replica("rima")
        for i in 0..<3 { try Fixtures.addIncident(rima, title: "Incident \(i)") }
        let revisions = try rima.allRevisions()
        try await backend.with(in: dir) { storage, _, _ in
            let first = try await Self.store(storage, revisions)
            #expect(first.accepted == 3 && first.duplicates == 0)
            let again = try await Self.store(storage, revisions)
            #expect(again.accepted == 0 && again.duplicates == 3)
            #expect(try await storage.knowledge().total == 3)
            let page = try await storage.missing(from: VersionVector(), limit: 10)
            #expect(page.texts == revisions.map(\.canonicalForms.text), "byte for byte, in log order")
            #expect(!page.more)
            #expect(page.nodes == [try rima.identity().node])
            #expect(try await storage.revisionText(at: revisions[1].dot) == revisions[1].canonicalForms.text)
            #expect(try await storage.revisionText(at: Dot(node: revisions[1].dot.node, counter: 99)) == nil)
        }
    }

    /// A NUL in a title is stored as sent (PostgreSQL's `text` holds none: only the title column,
    /// a search aid, drops it).
    @Test(arguments: CentralBackend.allCases)
    func aTitleWithANulCharacterIsStoredByteForByte(backend: CentralBackend) async throws {
        let rima = try replica("rima")
        try Fixtures.addIncident(rima, title: "Night raid\u{0} on the camp")
        let revisions = try rima.allRevisions()
        try await backend.with(in: dir) { storage, _, _ in
            let outcome = try await Self.store(storage, revisions)
            let page = try await storage.missing(from: VersionVector(), limit: 10)
            #expect(outcome.accepted == 1)
            #expect(page.texts == revisions.map(\.canonicalForms.text))
        }
    }

    @Test(arguments: CentralBackend.allCases)
    func aCausalGapOrAnInvalidFieldRefusesTheWholeBatch(backend: CentralBackend) async throws {
        let rima = try replica("rima")
        for i in 0..<3 { try Fixtures.addIncident(rima, title: "Incident \(i)") }
        let revisions = try rima.allRevisions()
        try await backend.with(in: dir) { storage, _, _ in
            await #expect {
                _ = try await Self.store(storage, [revisions[0], revisions[2]])
            } throws: { ($0 as? ProtocolError)?.code == .causalGap }
            let afterGap = try await storage.knowledge()
            #expect(afterGap.isEmpty, "nothing of the refused batch is stored")
            var bad = revisions[1]
            bad.operations = [.set(path: "casualties.killed", value: "many")]
            await #expect {
                _ = try await Self.store(storage, [revisions[0], bad])
            } throws: { ($0 as? ProtocolError)?.code == .invalidField }
            let afterInvalid = try await storage.knowledge()
            #expect(afterInvalid.isEmpty)
        }
    }

    @Test(arguments: CentralBackend.allCases)
    func concurrentEditsOfOneFieldAreOneNewConflict(backend: CentralBackend) async throws {
        let rima = try replica("rima")
        let omar = try replica("omar")
        let id = try Fixtures.addIncident(rima, title: "Shelling of the bakery", [.set(path: "casualties.injured", value: 1)])
        _ = try omar.receive(try rima.allRevisions(), now: 2)
        try Fixtures.edit(rima, id, [.set(path: "casualties.injured", value: 2)])
        try Fixtures.edit(omar, id, [.set(path: "casualties.injured", value: 3), .set(path: "narrative", value: "From the hospital.")])
        try await backend.with(in: dir) { storage, _, _ in
            _ = try await Self.store(storage, try rima.allRevisions())
            let second = try await Self.store(
                storage,
                try omar.missing(from: try await storage.knowledge(), limit: 100).texts.map {
                    try Revision(json: JSONValue(parsing: $0))
                })
            #expect(second.accepted == 1)
            #expect(second.newConflicts == 1)
            // What the node sends a fresh replica merges to the same record, conflict included.
            let fresh = try replica("fresh")
            let page = try await storage.missing(from: VersionVector(), limit: 100)
            _ = try fresh.receive(try page.texts.map { try Revision(json: JSONValue(parsing: $0)) }, now: 3)
            let merged = try #require(try fresh.record(id))
            #expect(merged.conflicts.map(\.path) == ["casualties.injured"])
            #expect(merged.value(at: "narrative") == "From the hospital.")
        }
    }

    @Test(arguments: CentralBackend.allCases)
    func aSecondContentForAHeldDotIsAForkFromItsOwnerAndEvidenceWhenRelayed(backend: CentralBackend) async throws {
        let original = try replica("rima")
        let clone = try replica("clone", node: try original.identity().node)
        try Fixtures.addIncident(original, title: "Detention at the checkpoint")
        try Fixtures.addIncident(clone, title: "Something else, under the same dot")
        let node = try original.identity().node
        try await backend.with(in: dir) { storage, _, _ in
            _ = try await Self.store(storage, try original.allRevisions())
            await #expect {
                _ = try await Self.store(storage, try clone.allRevisions(), owners: [node])
            } throws: { ($0 as? ProtocolError)?.code == .fork }
            let relayed = try await Self.store(storage, try clone.allRevisions())
            #expect(relayed.setAside == [Dot(node: node, counter: 1)])
            #expect(relayed.accepted == 0)
            #expect(try await storage.revisionText(at: Dot(node: node, counter: 1)) == (try original.allRevisions()[0].canonicalForms.text))
        }
    }

    @Test(arguments: CentralBackend.allCases)
    func pagesMergeEveryNodesRunInLogOrderAndEndWithMoreFalse(backend: CentralBackend) async throws {
        let stores = try ["a", "b", "c"].map { try replica($0) }
        for (i, store) in stores.enumerated() { for j in 0..<(i + 3) { try Fixtures.addIncident(store, title: "\(i)-\(j)") } }
        try await backend.with(in: dir) { storage, _, _ in
            var expected: [String] = []
            for store in stores {
                let revisions = try store.allRevisions()
                _ = try await Self.store(storage, revisions)
                expected += revisions.map(\.canonicalForms.text)
            }
            var knowledge = VersionVector()
            var seen: [String] = []
            var pages = 0
            while true {
                let page = try await storage.missing(from: knowledge, limit: 4)
                pages += 1
                seen += page.texts
                for text in page.texts { knowledge.add(try Revision(json: JSONValue(parsing: text)).dot) }
                if !page.more { break }
                #expect(page.texts.count == 4)
            }
            #expect(seen == expected, "every revision once, in the order stored")
            #expect(pages == 3)
            // A peer holding all of one node's revisions gets only the others'.
            let partial = try await storage.missing(from: VersionVector([try stores[2].identity().node: 5]), limit: 100)
            #expect(partial.texts.count == 7)
            #expect(!partial.nodes.contains(try stores[2].identity().node))
        }
    }

    @Test(arguments: CentralBackend.allCases)
    func enrolmentCodesTokensNodesAndRevocation(backend: CentralBackend) async throws {
        let rima = try replica("rima")
        let node = try rima.identity().node
        let key = try rima.publicKey()
        try await backend.with(in: dir) { storage, _, _ in
            try await storage.addAccount(name: "rima", role: .documenter, codeHash: Secrets.hash("code-1"), expires: 10_000, now: 1)
            await #expect {
                try await storage.addAccount(name: "rima", role: .admin, codeHash: Secrets.hash("code-2"), expires: 10_000, now: 1)
            } throws: { ($0 as? ProtocolError)?.code == .conflictingDuplicate }
            await #expect {
                _ = try await storage.redeem(
                    codeHash: Secrets.hash("wrong"), node: node, publicKey: key, tokenHash: "t", repeatable: false, now: 2)
            } throws: { ($0 as? ProtocolError)?.code == .unauthorized }
            let principal = try await storage.redeem(
                codeHash: Secrets.hash("code-1"), node: node, publicKey: key, tokenHash: Secrets.hash("token-1"), repeatable: false, now: 2)
            #expect(principal == Principal(account: "rima", role: .documenter, node: node, publicKey: key))
            #expect(try await storage.principal(tokenHash: Secrets.hash("token-1")) == principal)
            await #expect("a used code") {
                _ = try await storage.redeem(
                    codeHash: Secrets.hash("code-1"), node: node, publicKey: key, tokenHash: "t2", repeatable: false, now: 3)
            } throws: { ($0 as? ProtocolError)?.code == .unauthorized }
            // The same device whose answer was lost gets a new token.
            _ = try await storage.redeem(
                codeHash: Secrets.hash("code-1"), node: node, publicKey: key, tokenHash: Secrets.hash("token-2"), repeatable: true, now: 3)
            #expect(try await storage.principal(tokenHash: Secrets.hash("token-1")) == nil)
            #expect(try await storage.principal(tokenHash: Secrets.hash("token-2")) != nil)

            let restored = NodeBinding.fresh(publicKey: key).node
            try await storage.registerNode(restored, for: principal, tokenHash: Secrets.hash("token-2"), now: 4)
            let directory = try await storage.certifiedKeyDirectory()
            #expect(Set(directory.entries.keys) == [node, restored])
            let serverKey = try await storage.serverKey()
            #expect(directory.entries.values.allSatisfy { $0.certificate?.isIssued(by: serverKey) == true })
            let certificates = try await storage.certificates(of: [node])
            #expect(certificates.map(\.node) == [node])

            let tag = try await storage.keyDirectoryTag()
            #expect(try await storage.revokeDevice(node, now: 5))
            #expect(try await storage.keyDirectoryTag() != tag, "a revocation changes the directory's tag")
            #expect(try await storage.principal(tokenHash: Secrets.hash("token-2")) == nil)
            #expect(try await storage.keyDirectory().entries[restored]?.revoked == 5, "every node id of the device")
            #expect(try await !storage.revokeDevice(NodeBinding.fresh(publicKey: key).node, now: 6))
            #expect(try await storage.devices().count == 2)
            #expect(try await storage.accounts().map(\.name) == ["rima"])
            #expect(try await storage.revokeAccount("rima", now: 7))
            #expect(try await !storage.revokeAccount("nobody", now: 7))
        }
    }

    @Test(arguments: CentralBackend.allCases)
    func aPushAfterARevocationIsRefusedInsideTheTransactionAndAuditedPushesAreKept(backend: CentralBackend) async throws {
        let rima = try replica("rima")
        try Fixtures.addIncident(rima, title: "Looting of the market")
        let node = try rima.identity().node
        try await backend.with(in: dir) { storage, _, _ in
            try await storage.addAccount(name: "rima", role: .documenter, codeHash: Secrets.hash("c"), expires: 10_000, now: 1)
            _ = try await storage.redeem(
                codeHash: Secrets.hash("c"), node: node, publicKey: try rima.publicKey(), tokenHash: "t", repeatable: false, now: 2)
            _ = try await storage.revokeAccount("rima", now: 3)
            await #expect {
                _ = try await storage.store(
                    try rima.allRevisions(), from: [node], checked: .none, authenticate: { _ in }, admit: { _, _ in },
                    audit: { AuditEntry(time: 4, user: "rima", device: nil, action: "push", detail: "\($0.accepted)", address: nil) })
            } throws: { ($0 as? ProtocolError)?.code == .forbidden }
            #expect(try await storage.knowledge().isEmpty)
            try await storage.appendAudit(AuditEntry(time: 5, user: nil, device: nil, action: "add-user", detail: "one", address: nil))
            try await storage.appendAudit(
                AuditEntry(time: 6, user: "rima", device: nil, action: "pull", detail: "two", address: "10.0.0.1"))
            let audit = try await storage.audit(limit: 1)
            #expect(audit.map(\.detail) == ["two"], "the newest, oldest first")
            #expect(audit.first?.address == "10.0.0.1")
            #expect(try await storage.audit(limit: 10).map(\.detail) == ["one", "two"], "the refused push wrote no line")
        }
    }

    @Test(arguments: CentralBackend.allCases)
    func enrolmentFailuresAreCountedPerAddressAndCapped(backend: CentralBackend) async throws {
        try await backend.with(in: dir) { storage, _, _ in
            for t in 0..<3 { try await storage.recordEnrolmentFailure(from: "10.0.0.1", at: 100 + Int64(t), forgetBefore: 0, cap: 2) }
            try await storage.recordEnrolmentFailure(from: "10.0.0.2", at: 200, forgetBefore: 0, cap: 2)
            #expect(try await storage.enrolmentFailures(from: "10.0.0.1", since: 101) == 2)
            try await storage.recordEnrolmentFailure(from: "10.0.0.3", at: 300, forgetBefore: 0, cap: 2)
            #expect(try await storage.enrolmentFailures(from: "10.0.0.1", since: 0) == 0, "the longest quiet address went first")
            #expect(try await storage.enrolmentFailures(from: "10.0.0.3", since: 0) == 1)
            try await storage.recordEnrolmentFailure(from: "10.0.0.3", at: 400, forgetBefore: 350, cap: 2)
            #expect(try await storage.enrolmentFailures(from: "10.0.0.3", since: 0) == 1, "older failures are forgotten")
        }
    }

    @Test(arguments: CentralBackend.allCases)
    func attachmentReferencesManifestsQuotasAndTheFirstReceipt(backend: CentralBackend) async throws {
        let rima = try replica("rima")
        let id = try Fixtures.addIncident(rima, title: "Destroyed clinic")
        let manifest = try Fixtures.attach(rima, id, bytes: Fixtures.randomBytes(300_000, seed: 7), in: dir.path)
        let node = try rima.identity().node
        try await backend.with(in: dir) { storage, _, _ in
            #expect(try await storage.attachmentReferences(manifest.sha256).isEmpty)
            await #expect("unreferenced bytes are refused") {
                try await storage.storeAttachmentManifest(hash: manifest.hash, bytes: manifest.canonicalBytes)
            } throws: { _ in true }
            _ = try await Self.store(storage, try rima.allRevisions())
            #expect(try await storage.attachmentReferences(manifest.sha256) == [manifest.content])
            try await storage.storeAttachmentManifest(hash: manifest.hash, bytes: manifest.canonicalBytes)
            #expect(try await storage.attachmentManifest(hash: manifest.hash) == manifest.canonicalBytes)
            await #expect {
                try await storage.beginAttachmentUpload(
                    manifest.sha256, manifest: manifest.hash, size: 300_000, account: "rima", quota: 100, now: 1)
            } throws: { ($0 as? ProtocolError)?.code == .quotaExceeded }
            try await storage.beginAttachmentUpload(
                manifest.sha256, manifest: manifest.hash, size: 300_000, account: "rima", quota: nil, now: 1)
            try await storage.beginAttachmentUpload(
                manifest.sha256, manifest: manifest.hash, size: 300_000, account: "rima", quota: nil, now: 1)
            await #expect {
                try await storage.beginAttachmentUpload(
                    manifest.sha256, manifest: String(repeating: "a", count: 64), size: 300_000, account: "omar", quota: nil, now: 1)
            } throws: { ($0 as? ProtocolError)?.code == .uploadConflict }
            let receipt = try await storage.issueAttachmentReceipt(
                sha256: manifest.sha256, size: 300_000, manifest: manifest.hash, node: node, account: "rima", now: 9)
            #expect(receipt.isIssued(by: try await storage.serverKey()))
            let later = try await storage.issueAttachmentReceipt(
                sha256: manifest.sha256, size: 300_000, manifest: manifest.hash, node: node, account: "omar", now: 10)
            #expect(later == receipt, "the first receipt stands")
            #expect(try await storage.attachmentReceipt(manifest.sha256) == receipt)
            // Committed bytes count against their account's quota.
            await #expect {
                try await storage.beginAttachmentUpload(
                    String(repeating: "b", count: 64), manifest: String(repeating: "c", count: 64), size: 1, account: "rima",
                    quota: 300_000, now: 11)
            } throws: { ($0 as? ProtocolError)?.code == .quotaExceeded }
        }
    }
}
