import Crypto
import Foundation

/// Making and hashing the central node's secrets: bearer tokens and one-time enrolment codes.
/// Only SHA-256 hashes of them are ever stored.
public enum Secrets {
    /// A bearer token: 256 random bits, base64url without padding.
    public static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// A one-time enrolment code: 200 random bits as 8 groups of 5 base32 characters (easy to read aloud).
    public static func newEnrolmentCode() -> String {
        let alphabet = Array("abcdefghijkmnpqrstuvwxyz23456789")  // 32 symbols, no 0/o/1/l
        var generator = SystemRandomNumberGenerator()
        let symbols = (0..<40).map { _ in alphabet[Int.random(in: 0..<32, using: &generator)] }
        return stride(from: 0, to: 40, by: 5).map { String(symbols[$0..<$0 + 5]) }.joined(separator: "-")
    }

    /// Normalises a typed code (case, spaces) before hashing.
    public static func normaliseCode(_ code: String) -> String {
        code.lowercased().filter { !$0.isWhitespace }
    }

    /// Lowercase hex SHA-256 of the UTF-8 text.
    public static func hash(_ secret: String) -> String {
        SHA256.hash(data: Data(secret.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
