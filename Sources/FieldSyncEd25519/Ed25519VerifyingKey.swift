import Crypto
import Foundation

/// An Ed25519 public key made ready to check many signatures: its point decoded once and its
/// multiples tabulated (``CombTable``), so that each check is 128 table additions, four doublings
/// and one inversion instead of BoringSSL's decode, table and 252 doublings per signature.
///
/// It answers exactly as swift-crypto's `Curve25519.Signing.PublicKey.isValidSignature` (BoringSSL's
/// `ED25519_verify`): RFC 8032's cofactorless check, `s` below the group order, `R` compared as
/// bytes with the encoding of [s]B − [h]A, h = SHA-512(R ‖ A ‖ M) reduced modulo the order, and
/// the key decoded the same way (a non-canonical y and small-order points included). The tests
/// hold it to that answer on valid, altered and crafted signatures. Building one costs about three
/// signature checks; it is for a key with many signatures to check (a pull page, a pushed batch).
public struct Ed25519VerifyingKey: Sendable {
    /// Whether swift-crypto is BoringSSL here, whose answers this type is built and tested to give.
    /// On Apple platforms swift-crypto is CryptoKit, whose rules for edge cases (small-order keys,
    /// non-canonical encodings) are not known to match, so callers use swift-crypto alone there.
    #if canImport(CryptoKit)
        public static let answersAsSwiftCrypto = false
    #else
        public static let answersAsSwiftCrypto = true
    #endif

    /// The 32 bytes of the key, as hashed.
    public let rawRepresentation: [UInt8]
    /// Multiples of −A, since the check computes [h](−A) + [s]B.
    private let negatedKeyTable: CombTable

    /// Nil when the bytes are not 32 or are not a point of the curve (BoringSSL refuses every
    /// signature of such a key).
    public init?(rawRepresentation: some DataProtocol) {
        let bytes = [UInt8](rawRepresentation)
        guard bytes.count == 32, let point = bytes.withUnsafeBytes({ EdwardsPoint(decoding: $0) }) else { return nil }
        self.rawRepresentation = bytes
        self.negatedKeyTable = CombTable(point.negated)
    }

    /// Whether `signature` (64 bytes: R ‖ s) is this key's signature of `message`.
    public func isValidSignature(_ signature: some DataProtocol, for message: some DataProtocol) -> Bool {
        let signature = [UInt8](signature)
        guard signature.count == 64, signature[63] & 0xe0 == 0 else { return false }
        return signature.withUnsafeBytes { signature in
            let r = UnsafeRawBufferPointer(rebasing: signature[0..<32])
            let s = UnsafeRawBufferPointer(rebasing: signature[32..<64])
            guard Scalar.isCanonical(s) else { return false }
            var hasher = SHA512()
            hasher.update(bufferPointer: r)
            rawRepresentation.withUnsafeBytes { hasher.update(bufferPointer: $0) }
            hasher.update(data: message)
            let h = hasher.finalize().withUnsafeBytes { Scalar.reduce(wide: $0) }
            let hDigits = h.withUnsafeBytes { Scalar.signedDigits($0) }
            let sDigits = Scalar.signedDigits(s)
            let computed = multiplyAndAdd(hDigits: hDigits, sDigits: sDigits).encoded
            return computed.elementsEqual(r)
        }
    }

    /// [h](−A) + [s]B: the odd digits of both, four doublings, then the even digits.
    private func multiplyAndAdd(hDigits: [Int8], sDigits: [Int8]) -> EdwardsPoint {
        let base = CombTable.base
        var accumulator = EdwardsPoint.identity
        for row in 0..<32 {
            negatedKeyTable.add(row: row, digit: hDigits[2 * row + 1], to: &accumulator)
            base.add(row: row, digit: sDigits[2 * row + 1], to: &accumulator)
        }
        for _ in 0..<4 { accumulator = accumulator.doubled() }
        for row in 0..<32 {
            negatedKeyTable.add(row: row, digit: hDigits[2 * row], to: &accumulator)
            base.add(row: row, digit: sDigits[2 * row], to: &accumulator)
        }
        return accumulator
    }
}

extension Ed25519VerifyingKey {
    /// Whether `bytes` decode, as a key is decoded, to a point of small order ([8]P is the
    /// identity): the identity and the seven other points of order 2, 4 or 8, in any of their
    /// encodings. [h]A is then one of eight points whatever the message, so anyone can compute a
    /// signature that verifies (for the identity, R = [s]B with any s). Such a key proves nothing.
    public static func isSmallOrder(_ bytes: some DataProtocol) -> Bool {
        let bytes = [UInt8](bytes)
        guard bytes.count == 32, let point = bytes.withUnsafeBytes({ EdwardsPoint(decoding: $0) }) else { return false }
        return point.doubled().doubled().doubled().encoded == EdwardsPoint.identity.encoded
    }
}
