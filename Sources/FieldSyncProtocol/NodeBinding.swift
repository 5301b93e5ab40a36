import Crypto
import FieldSyncCore
import Foundation

/// Node ids bound to device keys (spec 2.1): a node id is the first 8 bytes, in hex, of the SHA-256
/// of a domain line, the device's 32 raw public-key bytes and a 16-byte nonce. Registering a node
/// id shows the nonce, so the central node can check that the id was made from the registering
/// device's own key: no one can register, or squat, another device's node id. A device makes a new
/// nonce for each node id it takes (a restore, a fork), so clones of one key never collide.
public enum NodeBinding {
    static let domain = Array("fieldsync node id v1\n".utf8)

    /// The node id that `publicKey` (base64) and `nonce` (32 lowercase hex digits) make, or nil when
    /// either is malformed.
    public static func node(publicKey: String, nonce: String) -> NodeID? {
        guard let key = Data(base64Encoded: publicKey), key.count == 32, nonce.count == 32,
            nonce.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) })
        else { return nil }
        var bytes = domain + Array(key)
        var index = nonce.startIndex
        while index < nonce.endIndex {
            let next = nonce.index(index, offsetBy: 2)
            bytes.append(UInt8(nonce[index..<next], radix: 16)!)
            index = next
        }
        let digest = SHA256.hash(data: bytes)
        return NodeID(digest.prefix(8).map { String(format: "%02x", $0) }.joined())
    }

    /// A new node id for `publicKey`, with the nonce that proves it.
    public static func fresh(publicKey: String) -> (node: NodeID, nonce: String) {
        let nonce = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        return (node(publicKey: publicKey, nonce: nonce)!, nonce)
    }

    /// Whether `node` is the id that `publicKey` and `nonce` make.
    public static func isBound(_ node: NodeID, publicKey: String, nonce: String?) -> Bool {
        guard let nonce else { return false }
        return self.node(publicKey: publicKey, nonce: nonce) == node
    }
}
