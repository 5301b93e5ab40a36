import Crypto
import FieldSyncCore
import Foundation

/// The central node's signed statement that a node id belongs to a public key, an account and a
/// role (spec 15.9). Replicas trust a key only when their own central node certified it, so a
/// bundle cannot introduce a key for a colleague's node id.
public struct NodeCertificate: Sendable, Equatable {
    public var node: NodeID
    public var publicKey: String
    public var user: String
    public var role: Role
    /// When the central node registered the node id (ms since 1970).
    public var issued: Int64
    /// The issuing central node's key fingerprint (``CentralNodeKey/fingerprint(ofPublicKey:)``).
    public var issuer: String
    /// Base64 Ed25519 signature of ``signedBytes`` by the central node's key.
    public var signature: String

    /// Domain-separated, so that no other FieldSync signature can pass for a certificate.
    static let domain = Array("fieldsync node certificate v1\n".utf8)

    /// What the signature covers: the domain line, then the canonical JSON of every member but `sig`.
    public var signedBytes: [UInt8] { Self.domain + unsignedJSON.canonicalBytes }

    private var unsignedJSON: JSONValue {
        [
            "node": .string(node.rawValue), "public_key": .string(publicKey), "user": .string(user), "role": .string(role.rawValue),
            "issued": .int(issued), "issuer": .string(issuer),
        ]
    }

    public var json: JSONValue {
        var o = unsignedJSON.objectValue!
        o["sig"] = .string(signature)
        return .object(o)
    }

    /// Signs a certificate with the central node's key.
    public static func issue(node: NodeID, publicKey: String, user: String, role: Role, issued: Int64, by key: DeviceKey) throws
        -> NodeCertificate
    {
        var certificate = NodeCertificate(
            node: node, publicKey: publicKey, user: user, role: role, issued: issued,
            issuer: CentralNodeKey.fingerprint(ofPublicKey: key.publicKeyBase64), signature: "")
        certificate.signature = try key.signature(for: certificate.signedBytes)
        return certificate
    }

    /// Whether the central node whose public key is `issuerKey` signed this certificate.
    public func isIssued(by issuerKey: String) -> Bool {
        issuer == CentralNodeKey.fingerprint(ofPublicKey: issuerKey)
            && SignatureCheck.isValidSignature(signature, of: signedBytes, publicKeyBase64: issuerKey)
    }

    init(node: NodeID, publicKey: String, user: String, role: Role, issued: Int64, issuer: String, signature: String) {
        self.node = node
        self.publicKey = publicKey
        self.user = user
        self.role = role
        self.issued = issued
        self.issuer = issuer
        self.signature = signature
    }

    public init(json: JSONValue, at path: String) throws(ProtocolError) {
        guard let o = json.objectValue, let nodeText = o["node"]?.stringValue, let node = NodeID(nodeText),
            let key = o["public_key"]?.stringValue, SignatureCheck.isPublicKey(key), let user = o["user"]?.stringValue,
            let role = o["role"]?.stringValue.flatMap(Role.init(rawValue:)), case .int(let issued)? = o["issued"],
            let issuer = o["issuer"]?.stringValue, let signature = o["sig"]?.stringValue, signature.utf8.count <= 200
        else { throw ProtocolError(.malformed, "\(path): expected a certificate {node, public_key, user, role, issued, issuer, sig}") }
        self.init(node: node, publicKey: key, user: user, role: role, issued: issued, issuer: issuer, signature: signature)
    }
}

/// The central node's own Ed25519 key, which certifies nodes. `serve` prints its fingerprint, and
/// a replica pins it at enrolment.
public enum CentralNodeKey {
    /// `sha256:` and the 64 lowercase hex digits of the SHA-256 of the 32 raw public-key bytes.
    public static func fingerprint(ofPublicKey base64: String) -> String {
        let bytes = Data(base64Encoded: base64) ?? Data()
        return "sha256:" + SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }
}
