/// The identity of one replica: 16 lowercase hex digits (64 random bits), chosen at `init`.
///
/// Every revision a replica authors is stamped with its node id and a per-node counter (a ``Dot``).
public struct NodeID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: String

    /// Accepts exactly 16 lowercase hex digits.
    public init?(_ text: String) {
        guard text.utf8.count == 16, text.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) })
        else { return nil }
        rawValue = text
    }

    /// A fresh random node id.
    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> NodeID {
        NodeID(Hex.encode(UInt64.random(in: .min ... .max, using: &generator), digits: 16))!
    }

    public static func random() -> NodeID {
        var generator = SystemRandomNumberGenerator()
        return random(using: &generator)
    }

    public var description: String { rawValue }
    public static func < (a: NodeID, b: NodeID) -> Bool { a.rawValue < b.rawValue }
}

/// Hex formatting without Foundation.
enum Hex {
    static let digits = Array("0123456789abcdef".utf8)

    static func encode(_ value: UInt64, digits count: Int) -> String {
        var out = [UInt8](repeating: 0x30, count: count)
        var v = value
        for i in stride(from: count - 1, through: 0, by: -1) {
            out[i] = digits[Int(v & 0xF)]
            v >>= 4
        }
        return String(decoding: out, as: UTF8.self)
    }
}
