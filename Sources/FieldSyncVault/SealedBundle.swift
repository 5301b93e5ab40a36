import Crypto
import FieldSyncCore
import Foundation

/// A bundle file sealed under a bundle passphrase (Protocol/sync-protocol.md, "Sealed bundles").
///
/// The file is a 24-byte magic line, a header (format 1, scrypt cost, 32-byte salt, 12-byte nonce)
/// and the ChaCha20-Poly1305 ciphertext of the plain bundle, length-prefixed and padded (Padmé),
/// with magic and header as associated data. A wrong passphrase, a changed header and a changed
/// byte all fail the same way: the bundle does not open, and nothing is imported.
public enum SealedBundle {
    public static let magic = Array("fieldsync-sealed-bundle\n".utf8)
    static let headerSize = 4 + 32 + 12

    public static func isSealed(_ bytes: [UInt8]) -> Bool { bytes.starts(with: magic) }

    public static func seal(_ plain: [UInt8], passphrase: String, kdf: PassphraseKDF) throws -> [UInt8] {
        let salt = KeyFile.randomBytes(32)
        let nonce = try ChaChaPoly.Nonce(data: KeyFile.randomBytes(12))
        let header = [1, kdf.log2N, PassphraseKDF.r, PassphraseKDF.p] + salt + Array(nonce)
        var length = UInt64(plain.count).bigEndian
        var padded = withUnsafeBytes(of: &length) { Array($0) } + plain
        padded += [UInt8](repeating: 0, count: Padme.paddedLength(padded.count) - padded.count)
        let key = try kdf.deriveKey(from: passphrase, salt: salt)
        let box = try ChaChaPoly.seal(padded, using: key, nonce: nonce, authenticating: magic + header)
        return magic + header + Array(box.ciphertext) + Array(box.tag)
    }

    public static func open(_ bytes: [UInt8], passphrase: String, file: String) throws -> [UInt8] {
        guard isSealed(bytes), bytes.count >= magic.count + headerSize + 16 + 8 else {
            throw VaultError(.truncated, "\(file) is not a sealed bundle, or it is truncated")
        }
        let header = Array(bytes[magic.count..<magic.count + headerSize])
        guard header[0] == 1 else { throw VaultError(.tampered, "\(file) is a sealed bundle of a format this version does not know") }
        let kdf = try PassphraseKDF(checking: header[1], r: header[2], p: header[3], in: file)
        let body = bytes[(magic.count + headerSize)...]
        let plain: [UInt8]
        do {
            let key = try kdf.deriveKey(from: passphrase, salt: Array(header[4..<36]))
            let box = try ChaChaPoly.SealedBox(
                nonce: ChaChaPoly.Nonce(data: header[36..<48]), ciphertext: body.dropLast(16), tag: body.suffix(16))
            plain = Array(try ChaChaPoly.open(box, using: key, authenticating: magic + header))
        } catch {
            throw VaultError(.wrongPassphrase, "\(file) does not open: wrong bundle passphrase, or the file was altered or damaged")
        }
        let length = plain[0..<8].reduce(0) { $0 << 8 | Int($1) }
        guard length <= plain.count - 8 else { throw VaultError(.tampered, "\(file): the sealed bundle's length is wrong") }
        return Array(plain[8..<8 + length])
    }
}
