/// An element of GF(2^255 − 19), in five limbs of 51 bits (radix 2^51), as in curve25519-donna and
/// BoringSSL's 64-bit field code. Products, ``+(_:_:)``, ``-(_:_:)`` and ``carried()`` hand out
/// *tight* values, each limb below 2^51 + 2^14. ``*(_:_:)`` and ``squared()`` take limbs below
/// 2^54: their 128-bit sums stay below 2^115, and the top carry times 19 below 2^64. The point
/// formulas therefore add and subtract tight values without carrying (``plusLoose(_:)``,
/// ``minusLoose(_:)``) and only multiply the results. A value is reduced to its canonical form only
/// for ``canonicalBytes``.
///
/// Verification handles public data only, so nothing here is constant-time.
struct FieldElement {
    var l0: UInt64
    var l1: UInt64
    var l2: UInt64
    var l3: UInt64
    var l4: UInt64

    static let mask: UInt64 = (1 << 51) - 1
    static let zero = FieldElement(l0: 0, l1: 0, l2: 0, l3: 0, l4: 0)
    static let one = FieldElement(l0: 1, l1: 0, l2: 0, l3: 0, l4: 0)

    /// d = −121665 / 121666, the curve constant.
    static let d: FieldElement = FieldElement(small: 121665).negated * FieldElement(small: 121666).inverse
    static let twiceD: FieldElement = d + d
    /// √−1 = 2^((p − 1) / 4).
    static let sqrtMinusOne: FieldElement = {
        let two = FieldElement(small: 2)
        return two.pow22523.squared() * two
    }()

    init(l0: UInt64, l1: UInt64, l2: UInt64, l3: UInt64, l4: UInt64) {
        self.l0 = l0
        self.l1 = l1
        self.l2 = l2
        self.l3 = l3
        self.l4 = l4
    }

    init(small value: UInt64) {
        precondition(value <= Self.mask)
        self.init(l0: value, l1: 0, l2: 0, l3: 0, l4: 0)
    }

    /// The 255 low bits of `bytes` (32, little-endian) as an element; the top bit is ignored and a
    /// value of p or more is taken modulo p, as BoringSSL's `fe_frombytes` does.
    init(bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count == 32)
        let w0 = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        let w1 = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        let w2 = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
        let w3 = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self)) & ~(1 << 63)
        self.init(
            l0: w0 & Self.mask,
            l1: (w0 >> 51 | w1 << 13) & Self.mask,
            l2: (w1 >> 38 | w2 << 26) & Self.mask,
            l3: (w2 >> 25 | w3 << 39) & Self.mask,
            l4: w3 >> 12
        )
    }

    /// The canonical 32-byte little-endian encoding (the value reduced below p; top bit clear).
    var canonicalBytes: [UInt8] {
        var h = self.carried().carried().carried()
        // h < 2^255 + a little, every limb below 2^51: subtract p once if h ≥ p, that is if h + 19
        // reaches 2^255.
        var t0 = h.l0 &+ 19
        var t1 = h.l1 &+ (t0 >> 51)
        t0 &= Self.mask
        var t2 = h.l2 &+ (t1 >> 51)
        t1 &= Self.mask
        var t3 = h.l3 &+ (t2 >> 51)
        t2 &= Self.mask
        var t4 = h.l4 &+ (t3 >> 51)
        t3 &= Self.mask
        if t4 >> 51 != 0 {
            t4 &= Self.mask
            h = FieldElement(l0: t0, l1: t1, l2: t2, l3: t3, l4: t4)
        }
        let words = [
            h.l0 | h.l1 << 51,
            h.l1 >> 13 | h.l2 << 38,
            h.l2 >> 26 | h.l3 << 25,
            h.l3 >> 39 | h.l4 << 12,
        ]
        var bytes = [UInt8](repeating: 0, count: 32)
        for (index, word) in words.enumerated() {
            for byte in 0..<8 { bytes[index * 8 + byte] = UInt8(truncatingIfNeeded: word >> (8 * UInt64(byte))) }
        }
        return bytes
    }

    /// Whether the canonical encoding is odd (RFC 8032's "negative" x).
    var isNegative: Bool { canonicalBytes[0] & 1 == 1 }

    var isZero: Bool { canonicalBytes.allSatisfy { $0 == 0 } }

    /// One carry pass (of limbs below 2^60): every limb but the lowest below 2^51, the lowest below
    /// 2^51 + 19 · 2^9.
    func carried() -> FieldElement {
        var r = self
        r.l1 &+= r.l0 >> 51
        r.l0 &= Self.mask
        r.l2 &+= r.l1 >> 51
        r.l1 &= Self.mask
        r.l3 &+= r.l2 >> 51
        r.l2 &= Self.mask
        r.l4 &+= r.l3 >> 51
        r.l3 &= Self.mask
        r.l0 &+= (r.l4 >> 51) &* 19
        r.l4 &= Self.mask
        return r
    }

    static func + (a: FieldElement, b: FieldElement) -> FieldElement {
        FieldElement(l0: a.l0 &+ b.l0, l1: a.l1 &+ b.l1, l2: a.l2 &+ b.l2, l3: a.l3 &+ b.l3, l4: a.l4 &+ b.l4).carried()
    }

    /// a − b as a + 4p − b, limb by limb (b's limbs below 4p's, 2^53 − 76, so nothing goes negative).
    static func - (a: FieldElement, b: FieldElement) -> FieldElement {
        let fourP0: UInt64 = (1 << 53) - 76
        let fourP: UInt64 = (1 << 53) - 4
        return FieldElement(
            l0: a.l0 &+ fourP0 &- b.l0,
            l1: a.l1 &+ fourP &- b.l1,
            l2: a.l2 &+ fourP &- b.l2,
            l3: a.l3 &+ fourP &- b.l3,
            l4: a.l4 &+ fourP &- b.l4
        ).carried()
    }

    var negated: FieldElement { .zero - self }

    /// self + b without carrying, for a factor of ``*(_:_:)`` or ``squared()`` only: with both
    /// below 2^53 per limb, the sum is below 2^54.
    @inline(__always)
    func plusLoose(_ b: FieldElement) -> FieldElement {
        FieldElement(l0: l0 &+ b.l0, l1: l1 &+ b.l1, l2: l2 &+ b.l2, l3: l3 &+ b.l3, l4: l4 &+ b.l4)
    }

    /// self − b as self + 2p − b without carrying, for a factor only: b must be tight (below 2p's
    /// limbs, 2^52 − 38), self below 2^53 per limb, so the result is below 2^54.
    @inline(__always)
    func minusLoose(_ b: FieldElement) -> FieldElement {
        let twoP0: UInt64 = (1 << 52) - 38
        let twoP: UInt64 = (1 << 52) - 2
        return FieldElement(
            l0: l0 &+ twoP0 &- b.l0, l1: l1 &+ twoP &- b.l1, l2: l2 &+ twoP &- b.l2, l3: l3 &+ twoP &- b.l3, l4: l4 &+ twoP &- b.l4)
    }

    /// Whether every limb is below 2^bits (for the debug assertions of the bounds above).
    func limbsBelow(bits: UInt64) -> Bool { (l0 | l1 | l2 | l3 | l4) >> bits == 0 }

    @inline(__always)
    private static func wide(_ a: UInt64, _ b: UInt64) -> UInt128 { UInt128(a) &* UInt128(b) }

    /// Limbs below 2^54 in (so each term is below 2^112.3, each sum of five below 2^115), tight out.
    static func * (a: FieldElement, b: FieldElement) -> FieldElement {
        assert(a.limbsBelow(bits: 54) && b.limbsBelow(bits: 54))
        let b1 = b.l1 &* 19
        let b2 = b.l2 &* 19
        let b3 = b.l3 &* 19
        let b4 = b.l4 &* 19
        let r0 = wide(a.l0, b.l0) &+ wide(a.l1, b4) &+ wide(a.l2, b3) &+ wide(a.l3, b2) &+ wide(a.l4, b1)
        let r1 = wide(a.l0, b.l1) &+ wide(a.l1, b.l0) &+ wide(a.l2, b4) &+ wide(a.l3, b3) &+ wide(a.l4, b2)
        let r2 = wide(a.l0, b.l2) &+ wide(a.l1, b.l1) &+ wide(a.l2, b.l0) &+ wide(a.l3, b4) &+ wide(a.l4, b3)
        let r3 = wide(a.l0, b.l3) &+ wide(a.l1, b.l2) &+ wide(a.l2, b.l1) &+ wide(a.l3, b.l0) &+ wide(a.l4, b4)
        let r4 = wide(a.l0, b.l4) &+ wide(a.l1, b.l3) &+ wide(a.l2, b.l2) &+ wide(a.l3, b.l1) &+ wide(a.l4, b.l0)
        return reduced(r0, r1, r2, r3, r4)
    }

    func squared() -> FieldElement {
        assert(limbsBelow(bits: 54))
        let a0x2 = l0 &* 2
        let a1x2 = l1 &* 2
        let a1x38 = l1 &* 38
        let a2x38 = l2 &* 38
        let a3x38 = l3 &* 38
        let a3x19 = l3 &* 19
        let a4x19 = l4 &* 19
        let w = Self.wide
        let r0 = w(l0, l0) &+ w(a1x38, l4) &+ w(a2x38, l3)
        let r1 = w(a0x2, l1) &+ w(a2x38, l4) &+ w(a3x19, l3)
        let r2 = w(a0x2, l2) &+ w(l1, l1) &+ w(a3x38, l4)
        let r3 = w(a0x2, l3) &+ w(a1x2, l2) &+ w(a4x19, l4)
        let r4 = w(a0x2, l4) &+ w(a1x2, l3) &+ w(l2, l2)
        return Self.reduced(r0, r1, r2, r3, r4)
    }

    /// `self` squared `times` times.
    func squared(times: Int) -> FieldElement {
        var r = self
        for _ in 0..<times { r = r.squared() }
        return r
    }

    @inline(__always)
    private static func reduced(_ r0: UInt128, _ r1: UInt128, _ r2: UInt128, _ r3: UInt128, _ r4: UInt128) -> FieldElement {
        var r1 = r1
        var r2 = r2
        var r3 = r3
        var r4 = r4
        r1 &+= r0 >> 51
        var l0 = UInt64(truncatingIfNeeded: r0) & mask
        r2 &+= r1 >> 51
        let l1 = UInt64(truncatingIfNeeded: r1) & mask
        r3 &+= r2 >> 51
        let l2 = UInt64(truncatingIfNeeded: r2) & mask
        r4 &+= r3 >> 51
        let l3 = UInt64(truncatingIfNeeded: r3) & mask
        let carry = UInt64(truncatingIfNeeded: r4 >> 51)
        let l4 = UInt64(truncatingIfNeeded: r4) & mask
        // r4 < 5 · 2^108 + 2^64 < 2^110.4, so carry · 19 < 2^63.7 and l0 stays below 2^64.
        l0 &+= carry &* 19
        return FieldElement(l0: l0 & mask, l1: l1 &+ (l0 >> 51), l2: l2, l3: l3, l4: l4)
    }

    /// self^((p − 5) / 8) = self^(2^252 − 3), for square roots.
    var pow22523: FieldElement {
        let z2 = squared()
        let z9 = self * z2.squared(times: 2)
        let z11 = z2 * z9
        let ones5 = z9 * z11.squared()  // onesN = self^(2^N − 1)
        let ones10 = ones5.squared(times: 5) * ones5
        let ones20 = ones10.squared(times: 10) * ones10
        let ones40 = ones20.squared(times: 20) * ones20
        let ones50 = ones40.squared(times: 10) * ones10
        let ones100 = ones50.squared(times: 50) * ones50
        let ones200 = ones100.squared(times: 100) * ones100
        let ones250 = ones200.squared(times: 50) * ones50
        return ones250.squared(times: 2) * self
    }

    /// self^(p − 2) = (self^(2^252 − 3))^8 · self^3: the inverse (zero for zero).
    var inverse: FieldElement {
        pow22523.squared(times: 3) * squared() * self
    }

    /// Whether both reduce to the same value modulo p.
    static func == (a: FieldElement, b: FieldElement) -> Bool { a.canonicalBytes == b.canonicalBytes }
}
