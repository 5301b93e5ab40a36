/// Scalars modulo the group order ℓ = 2^252 + 27742317777372353535851937790883648493, as 32
/// little-endian bytes.
enum Scalar {
    /// ℓ as four little-endian 64-bit words.
    static let order: [UInt64] = [0x5812_631a_5cf5_d3ed, 0x14de_f9de_a2f7_9cd6, 0, 0x1000_0000_0000_0000]

    /// Whether the 32 bytes at `bytes` encode a number below ℓ, checked as BoringSSL's
    /// `ED25519_verify` does (RFC 8032 5.1.7: an `s` of ℓ or more is refused).
    static func isCanonical(_ bytes: UnsafeRawBufferPointer) -> Bool {
        for index in stride(from: 3, through: 0, by: -1) {
            let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self))
            if word > order[index] { return false }
            if word < order[index] { return true }
        }
        return false
    }

    /// `wide` (64 little-endian bytes, a SHA-512 digest) modulo ℓ, as 32 bytes: ref10's
    /// `sc_reduce` (the one BoringSSL uses) written as loops over 21-bit signed limbs. 2^252 ≡ −δ
    /// (mod ℓ), and −δ in 21-bit limbs is `fold`'s six constants, so a limb of weight 2^(21·i),
    /// i ≥ 12, moves to the six limbs from i − 12 on. The order of folds and carries is ref10's,
    /// which bounds every limb well inside 64 bits.
    static func reduce(wide: UnsafeRawBufferPointer) -> [UInt8] {
        precondition(wide.count == 64)
        var s = [Int64](repeating: 0, count: 24)
        // Limb i is bits 21·i ..< 21·(i + 1); the last takes the 29 top bits.
        for i in 0..<24 {
            let bit = 21 * i
            let byte = bit / 8
            var word: UInt64 = 0
            for offset in 0..<min(8, 64 - byte) { word |= UInt64(wide[byte + offset]) << (8 * UInt64(offset)) }
            let value = word >> UInt64(bit % 8)
            s[i] = Int64(i == 23 ? value : value & 0x1f_ffff)
        }

        func fold(_ i: Int) {
            let v = s[i]
            s[i - 12] += v * 666643
            s[i - 11] += v * 470296
            s[i - 10] += v * 654183
            s[i - 9] -= v * 997805
            s[i - 8] += v * 136657
            s[i - 7] -= v * 683901
            s[i] = 0
        }
        func roundingCarry(_ i: Int) {
            let carry = (s[i] + (1 << 20)) >> 21
            s[i + 1] += carry
            s[i] -= carry << 21
        }
        func flooringCarry(_ i: Int) {
            let carry = s[i] >> 21
            s[i + 1] += carry
            s[i] -= carry << 21
        }

        for i in stride(from: 23, through: 18, by: -1) { fold(i) }
        for i in stride(from: 6, through: 16, by: 2) { roundingCarry(i) }
        for i in stride(from: 7, through: 15, by: 2) { roundingCarry(i) }
        for i in stride(from: 17, through: 12, by: -1) { fold(i) }
        for i in stride(from: 0, through: 10, by: 2) { roundingCarry(i) }
        for i in stride(from: 1, through: 11, by: 2) { roundingCarry(i) }
        fold(12)
        for i in 0...11 { flooringCarry(i) }
        fold(12)
        for i in 0...10 { flooringCarry(i) }

        // Twelve limbs, each now in 0 ..< 2^21 but the last: 32 bytes.
        var out = [UInt8]()
        out.reserveCapacity(32)
        var pending: UInt64 = 0
        var pendingBits: UInt64 = 0
        for i in 0..<12 {
            pending |= UInt64(s[i]) << pendingBits
            pendingBits += 21
            while pendingBits >= 8 && out.count < 32 {
                out.append(UInt8(truncatingIfNeeded: pending))
                pending >>= 8
                pendingBits -= 8
            }
        }
        while out.count < 32 {
            out.append(UInt8(truncatingIfNeeded: pending))
            pending >>= 8
        }
        return out
    }

    /// The scalar (below 2^253) as 64 signed base-16 digits in −8...8, least significant first.
    static func signedDigits(_ bytes: UnsafeRawBufferPointer) -> [Int8] {
        var digits = [Int8](repeating: 0, count: 64)
        for i in 0..<32 {
            digits[2 * i] = Int8(bytes[i] & 15)
            digits[2 * i + 1] = Int8(bytes[i] >> 4)
        }
        var carry: Int8 = 0
        for i in 0..<63 {
            digits[i] += carry
            carry = (digits[i] + 8) >> 4
            digits[i] -= carry << 4
        }
        digits[63] += carry
        return digits
    }
}
