import Crypto
import FieldSyncSeededRandom
import Testing

@testable import FieldSyncEd25519

@Suite struct FieldArithmeticTests {
    static func element(_ random: inout SplitMix64) -> FieldElement {
        Reference.randomBytes(32, &random).withUnsafeBytes { FieldElement(bytes: $0) }
    }

    /// The largest limbs any operation hands out (below 2^52), which the 128-bit sums must carry.
    static let largest = FieldElement(l0: (1 << 52) - 1, l1: (1 << 52) - 1, l2: (1 << 52) - 1, l3: (1 << 52) - 1, l4: (1 << 52) - 1)

    @Test func theCurveConstantsAreWhatTheyAre() {
        #expect(FieldElement.d * FieldElement(small: 121666) + FieldElement(small: 121665) == .zero)
        #expect(FieldElement.sqrtMinusOne.squared() + .one == .zero)
        #expect(EdwardsPoint.base.encoded == [0x58] + [UInt8](repeating: 0x66, count: 31))
        let order = Reference.bytes(Reference.order)
        #expect(Reference.multiply(.base, by: order).encoded == [1] + [UInt8](repeating: 0, count: 31))
    }

    @Test func encodingsReduceModuloP() {
        func decoded(_ bytes: [UInt8]) -> [UInt8] { bytes.withUnsafeBytes { FieldElement(bytes: $0).canonicalBytes } }
        let p: [UInt8] = [0xed] + [UInt8](repeating: 0xff, count: 30) + [0x7f]
        #expect(decoded(p) == [UInt8](repeating: 0, count: 32))
        #expect(decoded([0xee] + p.dropFirst()) == [1] + [UInt8](repeating: 0, count: 31))
        #expect(decoded([UInt8](repeating: 0xff, count: 31) + [0x7f]) == [18] + [UInt8](repeating: 0, count: 31))
        // The top bit is not part of the value.
        #expect(decoded([5] + [UInt8](repeating: 0, count: 30) + [0x80]) == [5] + [UInt8](repeating: 0, count: 31))
        var random = SplitMix64(seed: 11)
        for _ in 0..<200 {
            var bytes = Reference.randomBytes(32, &random)
            bytes[31] &= 0x7f
            // Below p (all but 19 of the 2^255 values), the encoding is the bytes themselves.
            #expect(bytes.withUnsafeBytes { FieldElement(bytes: $0) }.canonicalBytes == bytes)
        }
    }

    @Test func fieldOperationsKeepTheRingLaws() {
        var random = SplitMix64(seed: 12)
        var samples = (0..<150).map { _ in Self.element(&random) }
        samples += [Self.largest, .zero, .one, FieldElement.one.negated, Self.largest.negated]
        for (index, a) in samples.enumerated() {
            let b = samples[(index * 7 + 3) % samples.count]
            let c = samples[(index * 13 + 5) % samples.count]
            #expect(a * b == b * a)
            #expect(a * (b + c) == a * b + a * c)
            #expect((a * b) * c == a * (b * c))
            #expect(a.squared() == a * a)
            #expect((a - b) + b == a)
            #expect(a + a.negated == .zero)
            if !a.isZero { #expect(a * a.inverse == .one) }
            #expect(a.squared(times: 3) == a * a * a * a * a * a * a * a)
        }
    }

    /// The point formulas multiply uncarried sums and differences: factors up to 2^54 − 1 per limb.
    @Test func factorsUpToTheLooseBoundMultiplyAsCarriedOnes() {
        var random = SplitMix64(seed: 15)
        let loosest = FieldElement(l0: (1 << 54) - 1, l1: (1 << 54) - 1, l2: (1 << 54) - 1, l3: (1 << 54) - 1, l4: (1 << 54) - 1)
        for _ in 0..<100 {
            let (a, b, c) = (Self.element(&random), Self.element(&random), Self.element(&random))
            #expect(a.plusLoose(b) * c == (a + b) * c)
            #expect(a.minusLoose(b) * c == (a - b) * c)
            #expect(a.plusLoose(b).plusLoose(a.minusLoose(b)).squared() == (a + a).squared())
            #expect(loosest * c == loosest.carried() * c)
            #expect(c * loosest == c * loosest.carried())
        }
        #expect(loosest.squared() == loosest.carried().squared())
        #expect(loosest * loosest == loosest.carried() * loosest.carried())
    }

    /// Products and differences, carried or loose, reduce to what slow modular arithmetic gives,
    /// including results at or just above p, where the canonical encoding must subtract p.
    @Test func productsAndDifferencesEncodeAsTheReferenceComputesThem() {
        var random = SplitMix64(seed: 16)
        func words(_ value: FieldElement) -> [UInt64] {
            // The value the limbs stand for, unreduced (up to 2^258).
            let limbs = [value.l0, value.l1, value.l2, value.l3, value.l4]
            var total: [UInt64] = [0]
            for (index, limb) in limbs.enumerated() {
                var shifted = [UInt64](repeating: 0, count: 6)
                let bit = 51 * index
                shifted[bit / 64] = limb << UInt64(bit % 64)
                if bit % 64 != 0 { shifted[bit / 64 + 1] = limb >> UInt64(64 - bit % 64) }
                total = Reference.add(total, shifted)
            }
            return total
        }
        func expectCanonical(_ value: FieldElement, sourceLocation: SourceLocation = #_sourceLocation) {
            let expected = Reference.bytes(Reference.reduce(words(value), modulo: Reference.prime))
            #expect(value.canonicalBytes == expected, sourceLocation: sourceLocation)
        }
        let minusOne = FieldElement.zero - .one
        #expect(minusOne.canonicalBytes == [0xec] + [UInt8](repeating: 0xff, count: 30) + [0x7f])
        #expect((minusOne * minusOne).canonicalBytes == FieldElement.one.canonicalBytes)
        #expect((minusOne + .one).canonicalBytes == FieldElement.zero.canonicalBytes)
        #expect((minusOne + .one + .one).canonicalBytes == FieldElement.one.canonicalBytes)
        // Limbs at and above 2^51 whose value is p, p + 1 or 2p − 1.
        let mask = FieldElement.mask
        expectCanonical(FieldElement(l0: mask - 18, l1: mask, l2: mask, l3: mask, l4: mask))
        expectCanonical(FieldElement(l0: mask - 17, l1: mask, l2: mask, l3: mask, l4: mask))
        expectCanonical(FieldElement(l0: mask + 1 - 18, l1: mask + (1 << 13), l2: mask, l3: mask, l4: mask))
        for _ in 0..<200 {
            let (a, b) = (Self.element(&random), Self.element(&random))
            let product = a * b
            let expected = Reference.bytes(
                Reference.reduce(Reference.multiply(words(a), words(b)), modulo: Reference.prime))
            #expect(product.canonicalBytes == expected)
            #expect(a.plusLoose(b).minusLoose(product) * b == (a + b - product) * b)
            expectCanonical(a - b)
            expectCanonical(a.minusLoose(b))
            expectCanonical(a.plusLoose(b).plusLoose(a))
        }
    }

    @Test func theseArePublicKeysAsSwiftCryptoDerivesThem() throws {
        var random = SplitMix64(seed: 13)
        for _ in 0..<40 {
            let seed = Reference.randomBytes(32, &random)
            let key = try Curve25519.Signing.PrivateKey(rawRepresentation: seed)
            var scalar = Array(SHA512.hash(data: seed)).prefix(32).map { $0 }
            scalar[0] &= 248
            scalar[31] &= 127
            scalar[31] |= 64
            #expect(Reference.multiply(.base, by: scalar).encoded == Array(key.publicKey.rawRepresentation))
        }
    }

    @Test func theCombTableHoldsTheMultiplesItNames() {
        var random = SplitMix64(seed: 14)
        let point = Reference.multiply(.base, by: Reference.randomBytes(32, &random))
        let table = CombTable(point)
        for (row, multiple) in [(0, 1), (0, 8), (1, 3), (17, 5), (31, 8), (31, 1)] {
            var scalar = [UInt8](repeating: 0, count: 33)
            scalar[row] = UInt8(multiple)
            let expected = Reference.multiply(point, by: scalar).encoded
            #expect(EdwardsPoint.identity.adding(table.entries[row * 8 + multiple - 1]).encoded == expected)
            #expect(
                EdwardsPoint.identity.subtracting(table.entries[row * 8 + multiple - 1]).encoded
                    == Reference.multiply(point.negated, by: scalar).encoded)
        }
    }
}

@Suite struct ScalarTests {
    @Test func reductionModuloTheOrderMatchesTheBitByBitOne() {
        var random = SplitMix64(seed: 21)
        let order = Reference.bytes(Reference.order, count: 32)
        var inputs = (0..<300).map { _ in Reference.randomBytes(64, &random) }
        inputs.append([UInt8](repeating: 0, count: 64))
        inputs.append([UInt8](repeating: 0xff, count: 64))
        inputs.append(order + [UInt8](repeating: 0, count: 32))
        inputs.append(Reference.bytes(Reference.subtract(Reference.order + [0, 0, 0, 0], [1]), count: 64))
        inputs.append(Reference.bytes(Reference.add(Reference.order, Reference.order) + [0, 0, 0], count: 64))
        for input in inputs {
            let fast = input.withUnsafeBytes { Scalar.reduce(wide: $0) }
            #expect(fast == Reference.bytes(Reference.modOrder(Reference.words(input))))
        }
    }

    @Test func onlyScalarsBelowTheOrderAreCanonical() {
        func canonical(_ words: [UInt64]) -> Bool { Reference.bytes(words).withUnsafeBytes { Scalar.isCanonical($0) } }
        #expect(canonical([0, 0, 0, 0]))
        #expect(canonical(Reference.subtract(Reference.order, [1])))
        #expect(!canonical(Reference.order))
        #expect(!canonical(Reference.add(Reference.order, [1]).prefix(4).map { $0 }))
        #expect(!canonical([UInt64.max, UInt64.max, UInt64.max, 0x1fff_ffff_ffff_ffff]))
    }

    @Test func signedDigitsAddUpToTheScalar() {
        var random = SplitMix64(seed: 22)
        for _ in 0..<200 {
            var bytes = Reference.randomBytes(32, &random)
            bytes[31] &= 0x1f
            let digits = bytes.withUnsafeBytes { Scalar.signedDigits($0) }
            var nibbles = (0..<64).map { Int(digits[$0]) }
            #expect(nibbles.allSatisfy { (-8...8).contains($0) })
            for i in 0..<63 where nibbles[i] < 0 {
                nibbles[i] += 16
                nibbles[i + 1] -= 1
            }
            #expect(nibbles == bytes.flatMap { [Int($0 & 15), Int($0 >> 4)] })
        }
    }
}
