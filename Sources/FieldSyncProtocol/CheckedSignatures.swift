import Dispatch
import FieldSyncCore
import Foundation

/// Signatures already checked, on all cores, before a write transaction: for each revision, the
/// public key its signature verified with. Only ``KeyDirectory/checkSignatures(_:skipping:)`` makes
/// one, so a store can trust it to skip the Ed25519 check inside its transaction when the node's
/// key there is still the same.
public struct CheckedSignatures: Sendable {
    /// Each revision whose signature verified, by dot, with the key it verified with.
    let verified: [Dot: (publicKey: String, revision: Revision)]

    /// Nothing checked: every revision is verified inside the transaction.
    public static let none = CheckedSignatures(verified: [:])

    /// How many revisions were verified ahead.
    public var count: Int { verified.count }

    func covers(_ revision: Revision, with publicKey: String) -> Bool {
        guard let entry = verified[revision.dot] else { return false }
        // Comparing values is far cheaper than Ed25519, and means a revision altered after the
        // check (or another batch's) is never taken for the one checked.
        return entry.publicKey == publicKey && entry.revision == revision
    }
}

extension KeyDirectory {
    /// Verifies the signatures of `revisions` on all cores, skipping those `known` already covers
    /// (duplicates are never re-checked). A revision that appears twice in the batch, is unsigned,
    /// of an unknown node or fails is left out, so the transaction verifies it again and reports why.
    public func checkSignatures(_ revisions: [Revision], skipping known: VersionVector) -> CheckedSignatures {
        let candidates = candidates(revisions, skipping: known)
        let chunks = Self.chunks(candidates.count)
        var results = [[(String, Revision)]](repeating: [], count: chunks.count)
        results.withUnsafeMutableBufferPointer { slots in
            nonisolated(unsafe) let slots = slots
            DispatchQueue.concurrentPerform(iterations: chunks.count) { index in
                slots[index] = chunks[index].compactMap { verified(candidates[$0]) }
            }
        }
        return CheckedSignatures(results)
    }

    /// The same as ``checkSignatures(_:skipping:)`` for async callers: child tasks instead of
    /// blocking a thread of the cooperative pool.
    public func checkSignatures(_ revisions: [Revision], skipping known: VersionVector) async -> CheckedSignatures {
        let candidates = candidates(revisions, skipping: known)
        let results = await withTaskGroup(of: [(String, Revision)].self) { group in
            for chunk in Self.chunks(candidates.count) {
                group.addTask { chunk.compactMap { verified(candidates[$0]) } }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        return CheckedSignatures(results)
    }

    /// Checks a revision like ``verify(_:)``, but skips the Ed25519 check when `checked` shows its
    /// signature already verified with the key this directory holds for its node.
    public func verify(_ revision: Revision, checked: CheckedSignatures) throws(ProtocolError) {
        if let entry = entries[revision.dot.node], checked.covers(revision, with: entry.publicKey) { return }
        try verify(revision)
    }

    private func candidates(_ revisions: [Revision], skipping known: VersionVector) -> [Revision] {
        var seen: [Dot: Int] = [:]
        for revision in revisions { seen[revision.dot, default: 0] += 1 }
        return revisions.filter { !known.covers($0.dot) && seen[$0.dot] == 1 }
    }

    private func verified(_ revision: Revision) -> (String, Revision)? {
        guard let entry = entries[revision.dot.node], SignatureCheck.isValid(revision, publicKeyBase64: entry.publicKey) else { return nil }
        return (entry.publicKey, revision)
    }

    /// Index ranges splitting `count` items over the machine's cores (a few per core, to balance).
    private static func chunks(_ count: Int) -> [Range<Int>] {
        guard count > 0 else { return [] }
        let size = max(16, count / (ProcessInfo.processInfo.activeProcessorCount * 4) + 1)
        return stride(from: 0, to: count, by: size).map { $0..<min($0 + size, count) }
    }
}

extension CheckedSignatures {
    init(_ results: [[(String, Revision)]]) {
        var verified: [Dot: (publicKey: String, revision: Revision)] = [:]
        for chunk in results { for (key, revision) in chunk { verified[revision.dot] = (key, revision) } }
        self.init(verified: verified)
    }
}
