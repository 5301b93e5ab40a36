import Crypto
import FieldSyncCore
import FieldSyncEd25519
import Foundation

/// A device's Ed25519 signing key. The private half never leaves the replica file; the public half
/// is registered with the server at enrolment and travels in key directories and bundles.
public struct DeviceKey: Sendable {
    /// The 32 raw private-key bytes (kept as bytes: the Crypto key type is not `Sendable`).
    public let rawRepresentation: [UInt8]

    public static func generate() -> DeviceKey {
        DeviceKey(checked: Array(Curve25519.Signing.PrivateKey().rawRepresentation))
    }

    public init(rawRepresentation: [UInt8]) throws {
        _ = try Curve25519.Signing.PrivateKey(rawRepresentation: rawRepresentation)
        self.rawRepresentation = rawRepresentation
    }

    private init(checked bytes: [UInt8]) { rawRepresentation = bytes }

    private var privateKey: Curve25519.Signing.PrivateKey {
        // The bytes were checked when this value was made.
        try! Curve25519.Signing.PrivateKey(rawRepresentation: rawRepresentation)
    }

    /// The public key as standard base64 of its 32 raw bytes.
    public var publicKeyBase64: String { privateKey.publicKey.rawRepresentation.base64EncodedString() }

    /// Base64 Ed25519 signature of `bytes` (the enrolment proof, spec 15.4).
    public func signature(for bytes: [UInt8]) throws -> String {
        try privateKey.signature(for: bytes).base64EncodedString()
    }

    /// The revision with `sig` set: Ed25519 over ``Revision/signedBytes``, base64.
    public func sign(_ revision: Revision) throws -> Revision {
        var signed = revision
        signed.signature = try privateKey.signature(for: revision.signedBytes).base64EncodedString()
        return signed
    }
}

/// Checks revision signatures against public keys.
public enum SignatureCheck {
    /// True when `revision.signature` is a valid Ed25519 signature of its canonical bytes by `publicKeyBase64`.
    public static func isValid(_ revision: Revision, publicKeyBase64: String) -> Bool {
        guard let signature = revision.signature, let sigData = Data(base64Encoded: signature),
            let keyData = Data(base64Encoded: publicKeyBase64),
            let key = try? Curve25519.Signing.PublicKey(rawRepresentation: keyData)
        else { return false }
        return key.isValidSignature(sigData, for: Data(revision.signedBytes))
    }

    /// Whether `signature` (base64) is a valid Ed25519 signature of `bytes` by `publicKeyBase64`.
    public static func isValidSignature(_ signature: String, of bytes: [UInt8], publicKeyBase64: String) -> Bool {
        guard let sigData = Data(base64Encoded: signature), let keyData = Data(base64Encoded: publicKeyBase64),
            let key = try? Curve25519.Signing.PublicKey(rawRepresentation: keyData)
        else { return false }
        return key.isValidSignature(sigData, for: Data(bytes))
    }

    /// Whether a string is a base64 Ed25519 public key.
    /// Only the canonical base64 of the 32 key bytes counts: Foundation also decodes spellings with
    /// other padding bits, and two texts for one key must never exist, so that comparing key texts
    /// compares key bytes.
    public static func isPublicKey(_ text: String) -> Bool {
        guard let data = Data(base64Encoded: text), data.count == 32, data.base64EncodedString() == text else { return false }
        return (try? Curve25519.Signing.PublicKey(rawRepresentation: data)) != nil
    }

    /// Whether a base64 public key is of small order (``Ed25519VerifyingKey/isSmallOrder(_:)``):
    /// one whose signatures anyone can forge, which enrolment refuses.
    public static func isSmallOrderKey(_ text: String) -> Bool {
        guard let data = Data(base64Encoded: text) else { return false }
        return Ed25519VerifyingKey.isSmallOrder(data)
    }

    /// `publicKeyBase64` made ready for many checks (``Ed25519VerifyingKey``), where its verdicts are
    /// swift-crypto's (not on Apple platforms); nil there, or for a key that is not a point.
    static func tabulatedKey(_ publicKeyBase64: String) -> Ed25519VerifyingKey? {
        guard Ed25519VerifyingKey.answersAsSwiftCrypto, let raw = Data(base64Encoded: publicKeyBase64) else { return nil }
        return Ed25519VerifyingKey(rawRepresentation: raw)
    }
}

/// Role of an account on the central node.
public enum Role: String, Sendable, CaseIterable {
    case admin, documenter
}

/// One node's public key and who it belongs to, as the central node vouches for it.
public struct KeyEntry: Sendable, Equatable {
    public var node: NodeID
    public var publicKey: String
    public var user: String?
    public var role: Role?
    /// When the device was revoked (ms since 1970); revisions it pushed before stay valid.
    public var revoked: Int64?
    /// The central node's certificate of this node, key, account and role (spec 15.9). A key
    /// without one was learned on first use, from a bundle, and is not vouched for.
    public var certificate: NodeCertificate?

    public init(
        node: NodeID, publicKey: String, user: String? = nil, role: Role? = nil, revoked: Int64? = nil, certificate: NodeCertificate? = nil
    ) {
        self.node = node
        self.publicKey = publicKey
        self.user = user
        self.role = role
        self.revoked = revoked
        self.certificate = certificate
    }

    /// The entry a certificate vouches for: its node, key, user and role.
    public init(certificate: NodeCertificate, revoked: Int64? = nil) {
        self.init(
            node: certificate.node, publicKey: certificate.publicKey, user: certificate.user, role: certificate.role, revoked: revoked,
            certificate: certificate)
    }

    public var json: JSONValue {
        var o: [String: JSONValue] = ["node": .string(node.rawValue), "public_key": .string(publicKey)]
        o["user"] = user.map(JSONValue.string) ?? .null
        o["role"] = role.map { .string($0.rawValue) } ?? .null
        o["revoked"] = revoked.map(JSONValue.int) ?? .null
        if let certificate { o["certificate"] = certificate.json }
        return .object(o)
    }

    /// Whether `certificate` is one the central node with key `serverKey` issued for exactly this
    /// node and key (the certificate's user and role are then the ones to believe).
    public func isCertified(by serverKey: String) -> Bool {
        guard let certificate, certificate.isIssued(by: serverKey) else { return false }
        return certificate.node == node && certificate.publicKey == publicKey
    }

    public init(json: JSONValue, at path: String) throws(ProtocolError) {
        guard let nodeText = json["node"]?.stringValue, let node = NodeID(nodeText) else {
            throw ProtocolError(.malformed, "\(path).node: expected a node id")
        }
        guard let key = json["public_key"]?.stringValue, SignatureCheck.isPublicKey(key) else {
            throw ProtocolError(.malformed, "\(path).public_key: expected a base64 Ed25519 public key")
        }
        var revoked: Int64?
        if case .int(let r)? = json["revoked"] { revoked = r }
        var certificate: NodeCertificate?
        if let value = json["certificate"], value != .null {
            certificate = try NodeCertificate(json: value, at: "\(path).certificate")
            guard certificate?.node == node, certificate?.publicKey == key else {
                throw ProtocolError(.malformed, "\(path).certificate: certifies another node or key than the entry")
            }
        }
        self.init(
            node: node, publicKey: key, user: json["user"]?.stringValue, role: json["role"]?.stringValue.flatMap(Role.init(rawValue:)),
            revoked: revoked, certificate: certificate)
    }
}

/// Node → key entries; what a replica uses to verify revisions it receives.
public struct KeyDirectory: Sendable, Equatable {
    public var entries: [NodeID: KeyEntry]
    /// The central node's signing key (base64), which issued the entries' certificates.
    public var serverKey: String?

    public init(_ entries: [KeyEntry] = [], serverKey: String? = nil) {
        self.entries = Dictionary(entries.map { ($0.node, $0) }, uniquingKeysWith: { _, last in last })
        self.serverKey = serverKey
    }

    public subscript(node: NodeID) -> KeyEntry? { entries[node] }

    /// `{"protocol": 2, "server_key": ..., "keys": [...]}`, sorted by node.
    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "protocol": .int(SyncProtocol.version), "keys": .array(entries.keys.sorted().map { entries[$0]!.json }),
        ]
        if let serverKey { o["server_key"] = .string(serverKey) }
        return .object(o)
    }

    public init(json: JSONValue) throws(ProtocolError) {
        let o = try SyncProtocol.object(json, "key directory")
        try SyncProtocol.checkVersion(o)
        guard let keys = o["keys"]?.arrayValue else { throw ProtocolError(.malformed, "keys: expected an array") }
        var entries: [KeyEntry] = []
        for (i, key) in keys.enumerated() { entries.append(try KeyEntry(json: key, at: "keys[\(i)]")) }
        var serverKey: String?
        if let value = o["server_key"] {
            guard let text = value.stringValue, SignatureCheck.isPublicKey(text) else {
                throw ProtocolError(.malformed, "server_key: expected a base64 Ed25519 public key")
            }
            serverKey = text
        }
        self.init(entries, serverKey: serverKey)
    }

    /// Checks a revision's signature against the directory: the node must be known and the signature valid.
    public func verify(_ revision: Revision) throws(ProtocolError) {
        guard let entry = entries[revision.dot.node] else {
            throw ProtocolError(.unknownNode, "revision \(revision.dot): node \(revision.dot.node) has no registered key")
        }
        guard revision.signature != nil else {
            throw ProtocolError(.badSignature, "revision \(revision.dot) is not signed")
        }
        guard SignatureCheck.isValid(revision, publicKeyBase64: entry.publicKey) else {
            throw ProtocolError(.badSignature, "revision \(revision.dot): the signature does not match its content and its node's key")
        }
    }
}
