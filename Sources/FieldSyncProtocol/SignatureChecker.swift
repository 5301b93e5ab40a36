import FieldSyncCore
import FieldSyncEd25519
import Foundation

/// Checks the signatures of many revisions one after another, as `fieldsync verify` reads a whole
/// log: a key met ``tabulateFrom`` times is tabulated (``Ed25519VerifyingKey``, about three checks'
/// cost once, then less than half of each check), and every refusal is swift-crypto's
/// (``SignatureCheck/isValid(_:publicKeyBase64:)``), as in ``KeyDirectory/checkSignatures(_:skipping:)``.
public struct SignatureChecker {
    /// Uses of a key before it is tabulated.
    public static let tabulateFrom = 4

    private var uses: [String: Int] = [:]
    private var tables: [String: Ed25519VerifyingKey] = [:]

    public init() {}

    /// Whether `revision.signature` is a valid Ed25519 signature of its canonical bytes by
    /// `publicKeyBase64`: the same answer as ``SignatureCheck/isValid(_:publicKeyBase64:)``.
    public mutating func isValid(_ revision: Revision, publicKeyBase64: String) -> Bool {
        if let table = table(for: publicKeyBase64), let text = revision.signature, let signature = Data(base64Encoded: text),
            table.isValidSignature(signature, for: revision.signedBytes)
        {
            return true
        }
        return SignatureCheck.isValid(revision, publicKeyBase64: publicKeyBase64)
    }

    private mutating func table(for publicKeyBase64: String) -> Ed25519VerifyingKey? {
        if let table = tables[publicKeyBase64] { return table }
        uses[publicKeyBase64, default: 0] += 1
        guard uses[publicKeyBase64]! >= Self.tabulateFrom, let table = SignatureCheck.tabulatedKey(publicKeyBase64) else { return nil }
        tables[publicKeyBase64] = table
        uses[publicKeyBase64] = nil
        return table
    }
}
