/// A record's identity: a UUIDv7 in its lowercase 8-4-4-4-12 text form.
public struct RecordID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: String

    /// Accepts any UUID in canonical text form (lowercased); records are created with version 7.
    public init?(_ text: String) {
        let lower = text.lowercased()
        let bytes = Array(lower.utf8)
        guard bytes.count == 36 else { return nil }
        for (i, b) in bytes.enumerated() {
            if i == 8 || i == 13 || i == 18 || i == 23 {
                guard b == UInt8(ascii: "-") else { return nil }
            } else {
                guard (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x66) else { return nil }
            }
        }
        rawValue = lower
    }

    /// A new UUIDv7: 48 bits of Unix milliseconds, then random bits (RFC 9562 §5.7).
    public static func generate<G: RandomNumberGenerator>(millisecondsSince1970 ms: Int64, using generator: inout G) -> RecordID {
        let time = UInt64(max(0, ms)) & 0xFFFF_FFFF_FFFF
        let randA = UInt64.random(in: 0...0xFFF, using: &generator)
        let randB = UInt64.random(in: 0...(1 << 62 - 1), using: &generator)
        let high = (time << 16) | (0x7 << 12) | randA
        let low = (0b10 << 62) | randB
        let h = Hex.encode(high, digits: 16)
        let l = Hex.encode(low, digits: 16)
        let text = "\(h.prefix(8))-\(h.dropFirst(8).prefix(4))-\(h.suffix(4))-\(l.prefix(4))-\(l.suffix(12))"
        return RecordID(text)!
    }

    public static func generate(millisecondsSince1970 ms: Int64) -> RecordID {
        var generator = SystemRandomNumberGenerator()
        return generate(millisecondsSince1970: ms, using: &generator)
    }

    public var description: String { rawValue }
    /// The first 8 hex digits, for compact listings.
    public var short: String { String(rawValue.prefix(8)) }
    public static func < (a: RecordID, b: RecordID) -> Bool { a.rawValue < b.rawValue }
}
