import Crypto
import Foundation

/// The data key of an encrypted replica: 32 random bytes, made once at `init`, never derived from
/// a passphrase (passphrases only wrap it, in the key file). Every key the store uses is derived
/// from it with HKDF-SHA256, one per purpose, so no key serves two algorithms.
public struct StoreKey: Sendable, Equatable {
    public static let byteCount = 32

    public let rawBytes: [UInt8]

    public init(rawBytes: [UInt8]) throws {
        guard rawBytes.count == Self.byteCount else {
            throw StoreError(.invalid, "a replica data key has \(Self.byteCount) bytes, not \(rawBytes.count)")
        }
        self.rawBytes = rawBytes
    }

    /// A fresh key from the system's cryptographic generator.
    public static func random() -> StoreKey {
        var generator = SystemRandomNumberGenerator()
        // `try!`: the count is right by construction.
        return try! StoreKey(rawBytes: (0..<byteCount).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    /// The subkey for `purpose` (HKDF info), 32 bytes.
    func subkey(_ purpose: String) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: rawBytes), salt: Array("fieldsync replica".utf8), info: Array(purpose.utf8),
            outputByteCount: 32)
    }
}
