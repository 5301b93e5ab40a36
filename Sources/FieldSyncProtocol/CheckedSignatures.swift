import Crypto
import Dispatch
import FieldSyncCore
import FieldSyncEd25519
import Foundation

/// Signatures already checked, on all cores, before a write transaction: for each revision, the
/// public key its signature verified with, and what else the transaction needs of the revision
/// alone (its canonical text, chain hash and schema check; ``Ahead``). Only
/// ``KeyDirectory/checkSignatures(_:skipping:)`` makes one, so a store can trust it to skip the
/// Ed25519 check inside its transaction when the node's key there is still the same.
public struct CheckedSignatures: Sendable {
    /// Each revision whose signature verified, by dot, with the key it verified with and what was
    /// computed for it on the way (``Ahead``: the transaction need not compute it again).
    let verified: [Dot: Entry]

    struct Entry {
        var publicKey: String
        var revision: Revision
        var ahead: Ahead
    }

    /// What the check computed for a revision on its way, so that the serial write transaction does
    /// not compute it again.
    public struct Ahead: Sendable {
        /// The canonical text (with `sig`): what the store writes.
        public var text: String
        /// `RevisionChain.hash(ofText: text)`: what the node's next revision names as `prev`.
        public var chainHash: String
        /// Whether every operation passed ``IncidentSchema/validate(_:requireNFC:)`` (NFC as the
        /// revision's format requires). When false the transaction validates again, in batch
        /// order, and refuses with the first failure's message.
        public var fitsSchema: Bool
    }

    /// Nothing checked: every revision is verified inside the transaction.
    public static let none = CheckedSignatures(verified: [:])

    /// How many revisions were verified ahead.
    public var count: Int { verified.count }

    /// The canonical text of `revision` (with `sig`) if it was checked: what the store writes.
    public func canonicalText(of revision: Revision) -> String? {
        ahead(of: revision)?.text
    }

    /// What was computed ahead for `revision`, if this exact revision was checked.
    public func ahead(of revision: Revision) -> Ahead? {
        guard let entry = verified[revision.dot], entry.revision.isIdentical(to: revision) else { return nil }
        return entry.ahead
    }

    /// What a write transaction needs of a revision it will store (apply or hold): its canonical
    /// text and chain hash, taken from the check ahead or computed now, once the incident schema
    /// accepted every operation. A revision that does not fit is refused with its first failure
    /// (`invalid_field`), in batch order, as the transaction meets it.
    public func admissible(_ revision: Revision) throws(ProtocolError) -> Ahead {
        let ahead = ahead(of: revision)
        if let ahead, ahead.fitsSchema { return ahead }
        for operation in revision.operations {
            do { try IncidentSchema.validate(operation, requireNFC: revision.format >= 2) } catch {
                throw ProtocolError(.invalidField, "revision \(revision.dot): \(error.description)")
            }
        }
        let text = ahead?.text ?? revision.canonicalForms.text
        return Ahead(text: text, chainHash: RevisionChain.hash(ofText: text), fitsSchema: true)
    }

    func covers(_ revision: Revision, with publicKey: String) -> Bool {
        guard let entry = verified[revision.dot] else { return false }
        // Comparing bytes is far cheaper than Ed25519, and means a revision altered after the check
        // (or another batch's, even one that differs only in Unicode normalisation) is never taken
        // for the one checked.
        return entry.publicKey == publicKey && entry.revision.isIdentical(to: revision)
    }
}

extension KeyDirectory {
    /// Verifies the signatures of `revisions` on all cores, skipping those `known` already covers
    /// (duplicates are never re-checked). A revision that appears twice in the batch, is unsigned,
    /// of an unknown node or fails is left out, so the transaction verifies it again and reports why.
    public func checkSignatures(_ revisions: [Revision], skipping known: VersionVector) -> CheckedSignatures {
        let candidates = candidates(revisions, skipping: known)
        let tables = verifyingKeys(for: candidates)
        let chunks = Self.chunks(candidates.count)
        var results = [[CheckedSignatures.Entry]](repeating: [], count: chunks.count)
        results.withUnsafeMutableBufferPointer { slots in
            nonisolated(unsafe) let slots = slots
            DispatchQueue.concurrentPerform(iterations: chunks.count) { index in
                var keys: [NodeID: Curve25519.Signing.PublicKey] = [:]
                slots[index] = chunks[index].compactMap { verified(candidates[$0], tables: tables, keys: &keys) }
            }
        }
        return CheckedSignatures(results)
    }

    /// Like ``checkSignatures(_:skipping:)``, but takes what `prechecked` verified (ahead, while an
    /// earlier batch was written) where its key is the one this directory holds for the node, and
    /// checks only the rest. Nothing is trusted that a key of this directory did not verify.
    public func checkSignatures(_ revisions: [Revision], skipping known: VersionVector, given prechecked: CheckedSignatures)
        -> CheckedSignatures
    {
        guard prechecked.count > 0 else { return checkSignatures(revisions, skipping: known) }
        var taken: [Dot: CheckedSignatures.Entry] = [:]
        var rest: [Revision] = []
        for revision in revisions {
            if let entry = entries[revision.dot.node], prechecked.covers(revision, with: entry.publicKey) {
                taken[revision.dot] = prechecked.verified[revision.dot]
            } else {
                rest.append(revision)
            }
        }
        // A dot twice in the batch is never taken from the precheck (which left it out): the
        // transaction decides, as without one.
        let checked = checkSignatures(rest, skipping: known)
        for (dot, entry) in checked.verified where taken[dot] == nil { taken[dot] = entry }
        return CheckedSignatures(verified: taken)
    }

    /// The same as ``checkSignatures(_:skipping:)`` for async callers: child tasks instead of
    /// blocking a thread of the cooperative pool.
    public func checkSignatures(_ revisions: [Revision], skipping known: VersionVector) async -> CheckedSignatures {
        let candidates = candidates(revisions, skipping: known)
        let tables = verifyingKeys(for: candidates)
        let results = await withTaskGroup(of: [CheckedSignatures.Entry].self) { group in
            for chunk in Self.chunks(candidates.count) {
                group.addTask {
                    var keys: [NodeID: Curve25519.Signing.PublicKey] = [:]
                    return chunk.compactMap { verified(candidates[$0], tables: tables, keys: &keys) }
                }
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

    /// How many signatures of one node a batch must hold before its key is tabulated
    /// (``Ed25519VerifyingKey`` costs about three checks to build and then halves each one).
    static let tabulateFrom = 8

    /// The keys of the nodes with at least ``tabulateFrom`` candidates, made ready for many checks.
    private func verifyingKeys(for candidates: [Revision]) -> [NodeID: Ed25519VerifyingKey] {
        var counts: [NodeID: Int] = [:]
        for revision in candidates { counts[revision.dot.node, default: 0] += 1 }
        var tables: [NodeID: Ed25519VerifyingKey] = [:]
        for (node, count) in counts where count >= Self.tabulateFrom {
            tables[node] = entries[node].flatMap { SignatureCheck.tabulatedKey($0.publicKey) }
        }
        return tables
    }

    /// Verifies one revision: with its node's tabulated key when there is one (`tables`), else
    /// with swift-crypto, parsing each node's key once per chunk (`keys`). A signature the table
    /// refuses is checked again by swift-crypto, so that refusals are always BoringSSL's.
    private func verified(_ revision: Revision, tables: [NodeID: Ed25519VerifyingKey], keys: inout [NodeID: Curve25519.Signing.PublicKey])
        -> CheckedSignatures.Entry?
    {
        guard let entry = entries[revision.dot.node], let signature = revision.signature.flatMap({ Data(base64Encoded: $0) }) else {
            return nil
        }
        let forms = revision.canonicalForms
        if tables[revision.dot.node]?.isValidSignature(signature, for: forms.signed) != true {
            if keys[revision.dot.node] == nil {
                guard let raw = Data(base64Encoded: entry.publicKey), let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw)
                else {
                    return nil
                }
                keys[revision.dot.node] = key
            }
            guard keys[revision.dot.node]!.isValidSignature(signature, for: forms.signed) else { return nil }
        }
        // The rest of what the transaction needs of a revision alone, while on all cores anyway.
        let fitsSchema = revision.operations.allSatisfy { operation in
            (try? IncidentSchema.validate(operation, requireNFC: revision.format >= 2)) != nil
        }
        return CheckedSignatures.Entry(
            publicKey: entry.publicKey, revision: revision,
            ahead: CheckedSignatures.Ahead(text: forms.text, chainHash: RevisionChain.hash(ofText: forms.text), fitsSchema: fitsSchema))
    }

    /// Index ranges splitting `count` items over the machine's cores (a few per core, to balance).
    private static func chunks(_ count: Int) -> [Range<Int>] {
        guard count > 0 else { return [] }
        let size = max(16, count / (ProcessInfo.processInfo.activeProcessorCount * 4) + 1)
        return stride(from: 0, to: count, by: size).map { $0..<min($0 + size, count) }
    }
}

extension CheckedSignatures {
    init(_ results: [[CheckedSignatures.Entry]]) {
        var verified: [Dot: Entry] = [:]
        for chunk in results { for entry in chunk { verified[entry.revision.dot] = entry } }
        self.init(verified: verified)
    }
}
