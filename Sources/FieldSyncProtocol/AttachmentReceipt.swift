import FieldSyncCore
import Foundation

/// The central node's signed statement that it holds an attachment's bytes, whole and checked
/// (spec 19.7): the SHA-256, size and manifest, when they arrived, and which node and account
/// sent them. A replica deletes its own copy (`attachment prune`) only against a receipt it
/// verifies with the central node key it pinned at enrolment.
public struct AttachmentReceipt: Sendable, Equatable {
    public var sha256: String
    public var size: Int64
    public var manifest: String
    /// When the central node committed the bytes (ms since 1970).
    public var received: Int64
    /// The node and account that uploaded them.
    public var node: NodeID
    public var account: String
    /// The issuing central node's key fingerprint (``CentralNodeKey/fingerprint(ofPublicKey:)``).
    public var issuer: String
    /// Base64 Ed25519 signature of ``signedBytes`` by the central node's key.
    public var signature: String

    static let domain = Array("fieldsync attachment receipt v1\n".utf8)

    /// The domain line, then the canonical JSON of every member but `sig`.
    public var signedBytes: [UInt8] { Self.domain + unsignedJSON.canonicalBytes }

    private var unsignedJSON: JSONValue {
        [
            "sha256": .string(sha256), "size": .int(size), "manifest": .string(manifest), "received": .int(received),
            "node": .string(node.rawValue), "account": .string(account), "issuer": .string(issuer),
        ]
    }

    public var json: JSONValue {
        var o = unsignedJSON.objectValue!
        o["sig"] = .string(signature)
        return .object(o)
    }

    /// Signs a receipt with the central node's key.
    public static func issue(
        sha256: String, size: Int64, manifest: String, received: Int64, node: NodeID, account: String, by key: DeviceKey
    ) throws -> AttachmentReceipt {
        var receipt = AttachmentReceipt(
            sha256: sha256, size: size, manifest: manifest, received: received, node: node, account: account,
            issuer: CentralNodeKey.fingerprint(ofPublicKey: key.publicKeyBase64), signature: "")
        receipt.signature = try key.signature(for: receipt.signedBytes)
        return receipt
    }

    /// Whether the central node whose public key is `issuerKey` signed this receipt.
    public func isIssued(by issuerKey: String) -> Bool {
        issuer == CentralNodeKey.fingerprint(ofPublicKey: issuerKey)
            && SignatureCheck.isValidSignature(signature, of: signedBytes, publicKeyBase64: issuerKey)
    }

    /// Whether it is signed by `issuerKey` and names exactly this content of `sha256`.
    public func vouches(for sha256: String, _ content: AttachmentContent, issuerKey: String) -> Bool {
        self.sha256 == sha256 && size == content.size && manifest == content.manifest && isIssued(by: issuerKey)
    }

    init(
        sha256: String, size: Int64, manifest: String, received: Int64, node: NodeID, account: String, issuer: String,
        signature: String
    ) {
        self.sha256 = sha256
        self.size = size
        self.manifest = manifest
        self.received = received
        self.node = node
        self.account = account
        self.issuer = issuer
        self.signature = signature
    }

    public init(json: JSONValue, at path: String = "receipt") throws(ProtocolError) {
        guard let o = json.objectValue, let sha = o["sha256"]?.stringValue, Revision.isHash(sha), case .int(let size)? = o["size"],
            size >= 0, let manifest = o["manifest"]?.stringValue, Revision.isHash(manifest), case .int(let received)? = o["received"],
            let node = o["node"]?.stringValue.flatMap(NodeID.init), let account = o["account"]?.stringValue,
            let issuer = o["issuer"]?.stringValue, let signature = o["sig"]?.stringValue, signature.utf8.count <= 200
        else {
            throw ProtocolError(.malformed, "\(path): expected a receipt {sha256, size, manifest, received, node, account, issuer, sig}")
        }
        self.init(
            sha256: sha, size: size, manifest: manifest, received: received, node: node, account: account, issuer: issuer,
            signature: signature)
    }
}

/// What the central node stores about attachments besides their bytes: which revisions reference
/// them, their manifests, the uploads under way (for quotas and expiry) and the receipts it signed.
/// Implemented over SQLite by `SQLiteSyncStorage`, next to ``SyncStorage``.
public protocol AttachmentStorage: Sendable {
    /// The `content` values stored revisions gave `attachments.<sha256>`; empty when none did.
    func attachmentReferences(_ sha256: String) async throws -> [AttachmentContent]
    /// A manifest's canonical bytes, by its hash.
    func attachmentManifest(hash: String) async throws -> [UInt8]?
    func storeAttachmentManifest(hash: String, bytes: [UInt8]) async throws
    func attachmentReceipt(_ sha256: String) async throws -> AttachmentReceipt?
    /// Counts an upload of `sha256` under `manifest` against `account` from now on; throws
    /// `.quotaExceeded` when its committed and pending bytes would pass `quota` (nil: no quota), and
    /// `.uploadConflict` while an upload of the same bytes under another manifest is under way.
    /// Idempotent for the same upload.
    func beginAttachmentUpload(_ sha256: String, manifest: String, size: Int64, account: String, quota: Int64?, now: Int64) async throws
    /// Signs and stores the receipt of committed bytes, and ends their upload's accounting.
    func issueAttachmentReceipt(sha256: String, size: Int64, manifest: String, node: NodeID, account: String, now: Int64) async throws
        -> AttachmentReceipt
    /// Forgets uploads that expired (their bytes are gone).
    func forgetAttachmentUploads(_ sha256s: [String]) async throws
}

/// One entry of `POST /v1/attachments/status` (spec 19.3).
public struct AttachmentQuery: Sendable, Hashable {
    public var sha256: String
    public var manifest: String

    public init(sha256: String, manifest: String) {
        self.sha256 = sha256
        self.manifest = manifest
    }

    public static let maximumPerRequest = 1000

    public static func list(_ json: JSONValue) throws(ProtocolError) -> [AttachmentQuery] {
        guard let items = json["attachments"]?.arrayValue else { throw ProtocolError(.malformed, "expected {\"attachments\": [...]}") }
        guard items.count <= maximumPerRequest else {
            throw ProtocolError(.tooLarge, "attachments: \(items.count) in one request; the limit is \(maximumPerRequest)")
        }
        return try items.enumerated().map { (index, item) throws(ProtocolError) in
            guard let sha = item["sha256"]?.stringValue, Revision.isHash(sha), let manifest = item["manifest"]?.stringValue,
                Revision.isHash(manifest)
            else { throw ProtocolError(.malformed, "attachments[\(index)]: expected {sha256, manifest} (64 lowercase hex digits each)") }
            return AttachmentQuery(sha256: sha, manifest: manifest)
        }
    }

    public static func body(_ queries: [AttachmentQuery]) -> JSONValue {
        ["attachments": .array(queries.map { ["sha256": .string($0.sha256), "manifest": .string($0.manifest)] })]
    }
}

/// The central node's answer for one attachment in `attachments/status`.
public enum AttachmentAvailability: Sendable, Equatable {
    case complete(AttachmentReceipt)
    /// Chunks still missing; `received` maps a chunk that arrived in part to its byte count.
    case partial(missing: [Int], received: [Int: Int])
    /// No bytes yet; the manifest is needed first when `needsManifest`.
    case unknown(needsManifest: Bool)
    /// No stored revision references these bytes with this manifest.
    case unreferenced

    public func json(sha256: String) -> JSONValue {
        switch self {
        case .complete(let receipt): return ["sha256": .string(sha256), "state": "complete", "receipt": receipt.json]
        case .partial(let missing, let received):
            var partial: [String: JSONValue] = [:]
            for (index, count) in received { partial[String(index)] = .int(Int64(count)) }
            return [
                "sha256": .string(sha256), "state": "partial", "missing": .array(missing.map { .int(Int64($0)) }),
                "received": .object(partial),
            ]
        case .unknown(let needsManifest):
            return ["sha256": .string(sha256), "state": "unknown", "needs_manifest": .bool(needsManifest)]
        case .unreferenced: return ["sha256": .string(sha256), "state": "unreferenced"]
        }
    }

    public init(json: JSONValue) throws(ProtocolError) {
        switch json["state"]?.stringValue {
        case "complete":
            guard let receipt = json["receipt"] else { throw ProtocolError(.malformed, "a complete attachment carries its receipt") }
            self = .complete(try AttachmentReceipt(json: receipt))
        case "partial":
            guard let missing = json["missing"]?.arrayValue?.compactMap({ $0.intValue.map { Int($0) } }) else {
                throw ProtocolError(.malformed, "a partial attachment lists its missing chunks")
            }
            var received: [Int: Int] = [:]
            for (key, value) in json["received"]?.objectValue ?? [:] {
                if let index = Int(key), let count = value.intValue { received[index] = Int(count) }
            }
            self = .partial(missing: missing, received: received)
        case "unknown": self = .unknown(needsManifest: json["needs_manifest"] != .bool(false))
        case "unreferenced": self = .unreferenced
        default: throw ProtocolError(.malformed, "an attachment's state is complete, partial, unknown or unreferenced")
        }
    }
}
