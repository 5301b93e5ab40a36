import FieldSyncSeededRandom

@testable import FieldSyncEd25519

/// Slow, obviously correct arithmetic for the tests to hold the fast code to: numbers as
/// little-endian 64-bit words, reduced modulo ℓ one bit at a time, points multiplied by doubling
/// and adding.
enum Reference {
    static let order: [UInt64] = [0x5812_631a_5cf5_d3ed, 0x14de_f9de_a2f7_9cd6, 0, 0x1000_0000_0000_0000]

    static func words(_ bytes: [UInt8]) -> [UInt64] {
        stride(from: 0, to: bytes.count, by: 8).map { start in
            (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[start + $1]) << (8 * UInt64($1)) }
        }
    }

    static func bytes(_ words: [UInt64], count: Int = 32) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: words[$0 / 8] >> (8 * UInt64($0 % 8))) }
    }

    static func isLess(_ a: [UInt64], _ b: [UInt64]) -> Bool {
        for index in stride(from: max(a.count, b.count) - 1, through: 0, by: -1) {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            if x != y { return x < y }
        }
        return false
    }

    static func subtract(_ a: [UInt64], _ b: [UInt64]) -> [UInt64] {
        var result = a
        var borrow: UInt64 = 0
        for index in result.indices {
            let y = index < b.count ? b[index] : 0
            let (d1, o1) = result[index].subtractingReportingOverflow(y)
            let (d2, o2) = d1.subtractingReportingOverflow(borrow)
            result[index] = d2
            borrow = (o1 || o2) ? 1 : 0
        }
        return result
    }

    /// p = 2^255 − 19.
    static let prime: [UInt64] = [0xffff_ffff_ffff_ffed, .max, .max, 0x7fff_ffff_ffff_ffff]

    /// `value` (any number of words) modulo ℓ, bit by bit from the top: four words.
    static func modOrder(_ value: [UInt64]) -> [UInt64] { reduce(value, modulo: order) }

    /// `value` modulo `modulus` (four words), bit by bit from the top: four words.
    static func reduce(_ value: [UInt64], modulo order: [UInt64]) -> [UInt64] {
        var r: [UInt64] = [0, 0, 0, 0, 0]
        for bit in stride(from: value.count * 64 - 1, through: 0, by: -1) {
            var carry = (value[bit / 64] >> UInt64(bit % 64)) & 1
            for index in r.indices {
                let next = r[index] >> 63
                r[index] = r[index] << 1 | carry
                carry = next
            }
            if !isLess(r, order) { r = subtract(r, order) }
        }
        return Array(r.prefix(4))
    }

    static func multiply(_ a: [UInt64], _ b: [UInt64]) -> [UInt64] {
        var product = [UInt64](repeating: 0, count: a.count + b.count + 1)
        for i in a.indices {
            var carry: UInt64 = 0
            for j in b.indices {
                let (high, low) = a[i].multipliedFullWidth(by: b[j])
                let (s1, o1) = product[i + j].addingReportingOverflow(low)
                let (s2, o2) = s1.addingReportingOverflow(carry)
                product[i + j] = s2
                carry = high &+ (o1 ? 1 : 0) &+ (o2 ? 1 : 0)
            }
            var k = i + b.count
            while carry != 0 {
                let (s, o) = product[k].addingReportingOverflow(carry)
                product[k] = s
                carry = o ? 1 : 0
                k += 1
            }
        }
        return product
    }

    static func add(_ a: [UInt64], _ b: [UInt64]) -> [UInt64] {
        var result = [UInt64](repeating: 0, count: max(a.count, b.count) + 1)
        var carry: UInt64 = 0
        for index in 0..<(result.count - 1) {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            let (s1, o1) = x.addingReportingOverflow(y)
            let (s2, o2) = s1.addingReportingOverflow(carry)
            result[index] = s2
            carry = (o1 || o2) ? 1 : 0
        }
        result[result.count - 1] = carry
        return result
    }

    /// (r + h·a) mod ℓ: what a signer computes as `s`.
    static func signatureScalar(r: [UInt8], h: [UInt8], a: [UInt8]) -> [UInt8] {
        bytes(modOrder(add(words(r), multiply(words(h), words(a)))))
    }

    /// [scalar]point by doubling and adding, for a little-endian scalar of any length.
    static func multiply(_ point: EdwardsPoint, by scalar: [UInt8]) -> EdwardsPoint {
        var result = EdwardsPoint.identity
        for bit in stride(from: scalar.count * 8 - 1, through: 0, by: -1) {
            result = result.doubled()
            if (scalar[bit / 8] >> UInt8(bit % 8)) & 1 == 1 { result = result.adding(point.cached) }
        }
        return result
    }

    static func randomBytes(_ count: Int, _ random: inout SplitMix64) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
    }
}
