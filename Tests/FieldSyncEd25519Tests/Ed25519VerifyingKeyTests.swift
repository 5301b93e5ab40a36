import Crypto
import FieldSyncSeededRandom
import Foundation
import Testing

@testable import FieldSyncEd25519

/// The verifier must answer exactly as swift-crypto (BoringSSL's `ED25519_verify`) on every
/// input: a revision one replica accepts and another refuses would split the archive. So every
/// case here asks both.
@Suite struct Ed25519VerifyingKeyTests {
    static func swiftCryptoAccepts(_ signature: [UInt8], _ message: [UInt8], key: [UInt8]) -> Bool {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: key) else { return false }
        return key.isValidSignature(signature, for: message)
    }

    static func oursAccepts(_ signature: [UInt8], _ message: [UInt8], key: [UInt8]) -> Bool {
        guard let key = Ed25519VerifyingKey(rawRepresentation: key) else { return false }
        return key.isValidSignature(signature, for: message)
    }

    /// Both answers, which must be the same; returns it.
    @discardableResult
    static func expectSameAnswer(_ signature: [UInt8], _ message: [UInt8], key: [UInt8], sourceLocation: SourceLocation = #_sourceLocation)
        -> Bool
    {
        let theirs = swiftCryptoAccepts(signature, message, key: key)
        #expect(oursAccepts(signature, message, key: key) == theirs, sourceLocation: sourceLocation)
        return theirs
    }

    static func hex(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            bytes.append(UInt8(text[index..<next], radix: 16)!)
            index = next
        }
        return bytes
    }

    /// A signer that can sign for any key bytes with its scalar `a`, as a modified client holding
    /// its own private key can: R = [r]B, s = r + h·a.
    struct RawSigner {
        let a: [UInt8]

        init(seed: [UInt8]) {
            var scalar = Array(SHA512.hash(data: seed)).prefix(32).map { $0 }
            scalar[0] &= 248
            scalar[31] &= 127
            scalar[31] |= 64
            a = scalar
        }

        var publicPoint: EdwardsPoint { Reference.multiply(.base, by: a) }

        func sign(_ message: [UInt8], claimingKey key: [UInt8], nonce: [UInt8], rOffset: EdwardsPoint = .identity) -> [UInt8] {
            let r = nonce.withUnsafeBytes { Scalar.reduce(wide: $0) }
            let rBytes = Reference.multiply(.base, by: r).adding(rOffset.cached).encoded
            let h = Array(SHA512.hash(data: rBytes + key + message)).withUnsafeBytes { Scalar.reduce(wide: $0) }
            return rBytes + Reference.signatureScalar(r: r, h: h, a: a)
        }
    }

    /// The eight points of order dividing 8: the multiples of one of order 8, found as [ℓ]P.
    static let torsion: [EdwardsPoint] = {
        var random = SplitMix64(seed: 99)
        let order = Reference.bytes(Reference.order)
        while true {
            guard let point = Reference.randomBytes(32, &random).withUnsafeBytes({ EdwardsPoint(decoding: $0) }) else { continue }
            let t = Reference.multiply(point, by: order)
            if Reference.multiply(t, by: [4]).encoded != EdwardsPoint.identity.encoded {
                return (0..<8).map { Reference.multiply(t, by: [UInt8($0)]) }
            }
        }
    }()

    @Test func rfc8032TestVectorsVerify() {
        let vectors: [(key: String, message: String, signature: String)] = [
            (
                "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
            ),
            (
                "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
            ),
        ]
        for vector in vectors {
            let key = Self.hex(vector.key)
            let signature = Self.hex(vector.signature)
            #expect(Self.oursAccepts(signature, Self.hex(vector.message), key: key))
            #expect(!Self.oursAccepts(signature, Self.hex(vector.message) + [0], key: key))
        }
    }

    @Test func signaturesMadeBySwiftCryptoVerifyAndAlteredOnesAnswerAsSwiftCrypto() throws {
        var random = SplitMix64(seed: 31)
        var refused = 0
        for round in 0..<120 {
            let privateKey = try Curve25519.Signing.PrivateKey(rawRepresentation: Reference.randomBytes(32, &random))
            let key = Array(privateKey.publicKey.rawRepresentation)
            let message = Reference.randomBytes(Int.random(in: 0...1500, using: &random), &random)
            let signature = Array(try privateKey.signature(for: message))
            let verifier = try #require(Ed25519VerifyingKey(rawRepresentation: key))
            #expect(verifier.isValidSignature(signature, for: message))
            #expect(verifier.isValidSignature(Data(signature), for: Data(message)))
            // One bit flipped in the signature, the message or the key.
            var (alteredSignature, alteredMessage, alteredKey) = (signature, message, key)
            switch round % 3 {
            case 0: alteredSignature[Int.random(in: 0..<64, using: &random)] ^= 1 << UInt8.random(in: 0..<8, using: &random)
            case 1 where !message.isEmpty: alteredMessage[Int.random(in: 0..<message.count, using: &random)] ^= 1
            default: alteredKey[Int.random(in: 0..<32, using: &random)] ^= 1 << UInt8.random(in: 0..<8, using: &random)
            }
            if !Self.expectSameAnswer(alteredSignature, alteredMessage, key: alteredKey) { refused += 1 }
            // Truncated and lengthened signatures.
            #expect(!verifier.isValidSignature(signature.dropLast(), for: message))
            #expect(!verifier.isValidSignature(signature + [0], for: message))
        }
        #expect(refused >= 110)
    }

    @Test func aScalarOfTheOrderOrMoreIsRefusedAsSwiftCryptoRefusesIt() throws {
        var random = SplitMix64(seed: 32)
        for _ in 0..<20 {
            let privateKey = try Curve25519.Signing.PrivateKey(rawRepresentation: Reference.randomBytes(32, &random))
            let key = Array(privateKey.publicKey.rawRepresentation)
            let message = Reference.randomBytes(40, &random)
            let signature = Array(try privateKey.signature(for: message))
            // s + ℓ is the same scalar modulo ℓ, so only the range check refuses it.
            let sPlusOrder = Reference.bytes(Reference.add(Reference.words(Array(signature[32...])), Reference.order))
            if sPlusOrder[31] & 0xe0 == 0 {
                #expect(!Self.expectSameAnswer(Array(signature[..<32]) + sPlusOrder, message, key: key))
            }
            var highBits = signature
            highBits[63] |= 0x20
            #expect(!Self.expectSameAnswer(highBits, message, key: key))
        }
    }

    /// A documenter's modified client signs with its own scalar for a key with a small-order point
    /// added, or adds one to R. Whether [h]T vanishes decides; both verifiers must agree each time.
    @Test func keysAndNoncesWithSmallOrderComponentsAnswerAsSwiftCrypto() {
        var random = SplitMix64(seed: 33)
        let signer = RawSigner(seed: Reference.randomBytes(32, &random))
        var accepted = 0
        var refused = 0
        for (index, t) in Self.torsion.enumerated() {
            let key = signer.publicPoint.adding(t.cached).encoded
            for _ in 0..<12 {
                let message = Reference.randomBytes(24, &random)
                let nonce = Reference.randomBytes(64, &random)
                if Self.expectSameAnswer(signer.sign(message, claimingKey: key, nonce: nonce), message, key: key) {
                    accepted += 1
                } else {
                    refused += 1
                }
                // The same with a small-order point added to R.
                let plainKey = signer.publicPoint.encoded
                let offset = signer.sign(message, claimingKey: plainKey, nonce: nonce, rOffset: t)
                #expect(Self.expectSameAnswer(offset, message, key: plainKey) == (index == 0))
            }
        }
        // Both outcomes met: the torsioned keys are refused unless [h mod ℓ]T = 0.
        #expect(accepted >= 12 && refused > 0)
    }

    /// Small-order keys, the identity among them, in canonical and non-canonical encodings (y + p,
    /// the sign bit set on x = 0): BoringSSL decodes them all, and checks [s]B − [h]A = R.
    @Test func smallOrderKeysInEveryEncodingAnswerAsSwiftCrypto() {
        var random = SplitMix64(seed: 34)
        var keys = Self.torsion.map(\.encoded)
        keys.append([0xee] + [UInt8](repeating: 0xff, count: 30) + [0x7f])  // y = 1 + p: the identity
        keys.append([0xee] + [UInt8](repeating: 0xff, count: 31))  // the same with the sign bit
        keys.append([1] + [UInt8](repeating: 0, count: 30) + [0x80])  // identity, sign bit set
        keys.append([0xed] + [UInt8](repeating: 0xff, count: 30) + [0x7f])  // y = p: y = 0, order 4
        keys.append([0xed] + [UInt8](repeating: 0xff, count: 31))
        var accepted = 0
        for key in keys {
            #expect(Ed25519VerifyingKey(rawRepresentation: key) != nil)
            for _ in 0..<6 {
                let message = Reference.randomBytes(16, &random)
                let s = Reference.randomBytes(64, &random).withUnsafeBytes { Scalar.reduce(wide: $0) }
                let sB = Reference.multiply(.base, by: s)
                for t in Self.torsion {
                    if Self.expectSameAnswer(sB.adding(t.cached).encoded + s, message, key: key) { accepted += 1 }
                }
            }
        }
        // Four of the keys are the identity, which accepts t = 0 every time; the others sometimes.
        #expect(accepted > 6 * 4)
        // A non-canonical R is never the encoding computed: refused by both.
        let identityKey = [1] + [UInt8](repeating: 0, count: 31)
        let zero = [UInt8](repeating: 0, count: 32)
        #expect(Self.expectSameAnswer(identityKey + zero, [], key: identityKey))
        #expect(!Self.expectSameAnswer([0xee] + [UInt8](repeating: 0xff, count: 30) + [0x7f] + zero, [], key: identityKey))
    }

    /// With the identity as its key, a key holder can sign anything with any s: R = [s]B. Scalars
    /// in [2^252, ℓ), which random ones almost never are, set the top digit.
    @Test func scalarsJustBelowTheOrderVerifyAsSwiftCryptoVerifiesThem() {
        var random = SplitMix64(seed: 36)
        let identityKey = [1] + [UInt8](repeating: 0, count: 31)
        let orderMinusOne = Reference.subtract(Reference.order, [1])
        var scalars = [Reference.bytes(orderMinusOne), Reference.bytes([0, 0, 0, 0x1000_0000_0000_0000])]
        for _ in 0..<20 {
            // 2^252 plus a random number below ℓ − 2^252.
            var words = Reference.words(Reference.randomBytes(32, &random))
            words[1] &= 0x0fff_ffff_ffff_ffff
            words[2] = 0
            words[3] = 0x1000_0000_0000_0000
            scalars.append(Reference.bytes(words))
        }
        for s in scalars {
            #expect(s.withUnsafeBytes { Scalar.isCanonical($0) })
            let r = Reference.multiply(.base, by: s).encoded
            let message = Reference.randomBytes(20, &random)
            #expect(Self.expectSameAnswer(r + s, message, key: identityKey))
            #expect(!Self.expectSameAnswer(Reference.multiply(.base, by: s).doubled().encoded + s, message, key: identityKey))
        }
    }

    /// Every key encoding with y = p + k (k in 0...18, the only non-canonical ones), both signs:
    /// decoded, or refused, as BoringSSL does, and then the same answers.
    @Test func everyNonCanonicalKeyEncodingAnswersAsSwiftCrypto() {
        var random = SplitMix64(seed: 37)
        var decoded = 0
        for k in 0...18 {
            for sign: UInt8 in [0, 0x80] {
                var key = Reference.bytes(Reference.add(Reference.prime, [UInt64(k)]))
                key[31] |= sign
                if Ed25519VerifyingKey(rawRepresentation: key) != nil { decoded += 1 }
                let s = Reference.randomBytes(64, &random).withUnsafeBytes { Scalar.reduce(wide: $0) }
                let sB = Reference.multiply(.base, by: s)
                for t in Self.torsion {
                    Self.expectSameAnswer(sB.adding(t.cached).encoded + s, [7], key: key)
                }
            }
        }
        #expect(decoded >= 4)
    }

    @Test func onlyTheEightSmallOrderPointsAreOfSmallOrder() throws {
        for t in Self.torsion { #expect(Ed25519VerifyingKey.isSmallOrder(t.encoded)) }
        #expect(Ed25519VerifyingKey.isSmallOrder([0xee] + [UInt8](repeating: 0xff, count: 30) + [0x7f]))
        var random = SplitMix64(seed: 38)
        let key = Array(
            try Curve25519.Signing.PrivateKey(rawRepresentation: Reference.randomBytes(32, &random)).publicKey.rawRepresentation)
        #expect(!Ed25519VerifyingKey.isSmallOrder(key))
        // A torsion component on a key of large order is not small order: its signatures cannot be forged.
        let point = try #require(key.withUnsafeBytes { EdwardsPoint(decoding: $0) })
        #expect(!Ed25519VerifyingKey.isSmallOrder(point.adding(Self.torsion[3].cached).encoded))
        #expect(!Ed25519VerifyingKey.isSmallOrder([2] + [UInt8](repeating: 0, count: 31)))  // no point
        #expect(!Ed25519VerifyingKey.isSmallOrder([UInt8](repeating: 1, count: 31)))
    }

    @Test func bytesThatAreNoPointMakeNoKey() {
        var random = SplitMix64(seed: 35)
        var none = 0
        for _ in 0..<200 {
            let bytes = Reference.randomBytes(32, &random)
            if Ed25519VerifyingKey(rawRepresentation: bytes) == nil {
                none += 1
                // swift-crypto takes the bytes but accepts no signature for them.
                #expect(!Self.swiftCryptoAccepts([UInt8](repeating: 0, count: 64), [], key: bytes))
            }
        }
        // About half of all y have no x.
        #expect((60...140).contains(none))
        #expect(Ed25519VerifyingKey(rawRepresentation: [UInt8](repeating: 1, count: 31)) == nil)
    }
}
