/// A point of the Ed25519 curve −x² + y² = 1 + d·x²·y² in extended coordinates (X : Y : Z : T),
/// with x = X/Z, y = Y/Z and x·y = T/Z. The addition and doubling formulas are those of Hisil,
/// Wong, Carter and Dawson (2008) for a = −1, which are complete on this curve: they hold for every
/// pair of points, the identity and the small-order points included.
struct EdwardsPoint {
    var x: FieldElement
    var y: FieldElement
    var z: FieldElement
    var t: FieldElement

    static let identity = EdwardsPoint(x: .zero, y: .one, z: .one, t: .zero)

    /// The base point B: y = 4/5, x even.
    static let base: EdwardsPoint = {
        var encoding = [UInt8](repeating: 0x66, count: 32)
        encoding[0] = 0x58
        return encoding.withUnsafeBytes { EdwardsPoint(decoding: $0)! }
    }()

    init(x: FieldElement, y: FieldElement, z: FieldElement, t: FieldElement) {
        self.x = x
        self.y = y
        self.z = z
        self.t = t
    }

    /// Decodes a 32-byte encoding exactly as BoringSSL's `x25519_ge_frombytes_vartime` does: y is
    /// the 255 low bits taken modulo p (a non-canonical y is accepted), x the square root whose
    /// parity the top bit names (x = 0 with the top bit set is accepted as x = 0). Nil when
    /// (y² − 1) / (d·y² + 1) has no square root.
    init?(decoding bytes: UnsafeRawBufferPointer) {
        let y = FieldElement(bytes: bytes)
        let y2 = y.squared()
        let u = y2 - .one
        let v = y2 * FieldElement.d + .one
        var x = u * (u * v).pow22523
        let vxx = x.squared() * v
        if !(vxx - u).isZero {
            guard (vxx + u).isZero else { return nil }
            x = x * FieldElement.sqrtMinusOne
        }
        if x.isNegative != (bytes[31] >> 7 == 1) { x = x.negated }
        self.init(x: x, y: y, z: .one, t: x * y)
    }

    /// The canonical 32-byte encoding: y, with the parity of x in the top bit.
    var encoded: [UInt8] {
        let zInverse = z.inverse
        var bytes = (y * zInverse).canonicalBytes
        if (x * zInverse).isNegative { bytes[31] |= 0x80 }
        return bytes
    }

    var negated: EdwardsPoint { EdwardsPoint(x: x.negated, y: y, z: z, t: t.negated) }

    /// 2·self (dbl-2008-hwcd with a = −1, signs as in ref10). The coordinates are tight, so the
    /// sums and differences below stay under 2^54 per limb without carrying (``FieldElement``).
    func doubled() -> EdwardsPoint {
        let a = x.squared()
        let b = y.squared()
        let zz = z.squared()
        let c = zz.plusLoose(zz)
        let h = a.plusLoose(b)
        let e = h.minusLoose(x.plusLoose(y).squared())
        let g = a.minusLoose(b)
        let f = c.plusLoose(g)
        return EdwardsPoint(x: e * f, y: g * h, z: f * g, t: e * h)
    }

    /// self + q (add-2008-hwcd-3 with a = −1, k = 2d).
    func adding(_ q: CachedPoint) -> EdwardsPoint { adding(q, negated: false) }

    /// self − q: the same formula with −q = (−x, y), which swaps y + x with y − x and negates T.
    func subtracting(_ q: CachedPoint) -> EdwardsPoint { adding(q, negated: true) }

    @inline(__always)
    private func adding(_ q: CachedPoint, negated: Bool) -> EdwardsPoint {
        let a = y.minusLoose(x) * (negated ? q.yPlusX : q.yMinusX)
        let b = y.plusLoose(x) * (negated ? q.yMinusX : q.yPlusX)
        let c = t * q.tTimes2d
        let d = z * q.zTimes2
        let e = b.minusLoose(a)
        let h = b.plusLoose(a)
        let f = negated ? d.plusLoose(c) : d.minusLoose(c)
        let g = negated ? d.minusLoose(c) : d.plusLoose(c)
        return EdwardsPoint(x: e * f, y: g * h, z: f * g, t: e * h)
    }

    var cached: CachedPoint {
        CachedPoint(yPlusX: y + x, yMinusX: y - x, zTimes2: z + z, tTimes2d: t * FieldElement.twiceD)
    }
}

/// A point kept ready to be added: (Y + X, Y − X, 2Z, 2d·T), as ref10's `ge_cached`, each tight.
struct CachedPoint {
    var yPlusX: FieldElement
    var yMinusX: FieldElement
    var zTimes2: FieldElement
    var tTimes2d: FieldElement
}

/// The multiples k · 256^j · P for k in 1...8 and j in 0..<32 of one point P: with a scalar in 64
/// signed base-16 digits, k·P is 64 additions of table entries and four doublings, where a
/// sliding-window multiplication takes 252 doublings. Building one costs about as much as three
/// signature checks, so it pays for itself on the fourth signature of the same key.
struct CombTable {
    /// Row j, entry k − 1 at `j * 8 + k - 1`.
    let entries: [CachedPoint]

    init(_ point: EdwardsPoint) {
        var entries: [CachedPoint] = []
        entries.reserveCapacity(256)
        var rowBase = point
        for row in 0..<32 {
            let step = rowBase.cached
            var multiple = rowBase
            entries.append(step)
            for _ in 2...8 {
                multiple = multiple.adding(step)
                entries.append(multiple.cached)
            }
            if row < 31 {
                for _ in 0..<8 { rowBase = rowBase.doubled() }
            }
        }
        self.entries = entries
    }

    /// The base point's table, built once.
    static let base = CombTable(.base)

    /// `accumulator` plus digit · 256^row · P, for a digit in −8...8.
    @inline(__always)
    func add(row: Int, digit: Int8, to accumulator: inout EdwardsPoint) {
        if digit > 0 {
            accumulator = accumulator.adding(entries[row &* 8 &+ Int(digit) &- 1])
        } else if digit < 0 {
            accumulator = accumulator.subtracting(entries[row &* 8 &- Int(digit) &- 1])
        }
    }
}
