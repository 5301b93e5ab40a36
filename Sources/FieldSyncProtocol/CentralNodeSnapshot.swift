import FieldSyncCore

/// Everything a central node holds but attachment bytes, as `fieldsync server migrate` moves it
/// from one backend to another: its identity (node id and signing key, so that every certificate
/// and receipt it issued stays valid), the log byte for byte in log order, the evidence kept
/// aside, accounts, enrolment codes, devices with their token hashes and certificates, the audit
/// log, and attachment metadata. Record states are not carried: the target replays them.
public struct CentralNodeSnapshot: Sendable {
    public struct StoredRevision: Sendable, Equatable {
        public var text: String
        public var received: Int64
        public init(text: String, received: Int64) {
            self.text = text
            self.received = received
        }
    }

    public struct SetAside: Sendable, Equatable {
        public var node: NodeID, counter: UInt64, record: String, body: String, hash: String, reason: String, detail: String, stored: Int64
        public init(
            node: NodeID, counter: UInt64, record: String, body: String, hash: String, reason: String, detail: String, stored: Int64
        ) {
            (self.node, self.counter, self.record, self.body, self.hash) = (node, counter, record, body, hash)
            (self.reason, self.detail, self.stored) = (reason, detail, stored)
        }
    }

    public struct Code: Sendable, Equatable {
        public var hash: String, account: String, created: Int64, expires: Int64, used: Int64?
        public init(hash: String, account: String, created: Int64, expires: Int64, used: Int64?) {
            (self.hash, self.account, self.created, self.expires, self.used) = (hash, account, created, expires, used)
        }
    }

    public struct StoredDevice: Sendable, Equatable {
        public var node: NodeID, account: String, publicKey: String, tokenHash: String, enrolled: Int64, revoked: Int64?
        public var certificate: String?
        public init(
            node: NodeID, account: String, publicKey: String, tokenHash: String, enrolled: Int64, revoked: Int64?, certificate: String?
        ) {
            (self.node, self.account, self.publicKey, self.tokenHash) = (node, account, publicKey, tokenHash)
            (self.enrolled, self.revoked, self.certificate) = (enrolled, revoked, certificate)
        }
    }

    public struct Reference: Sendable, Equatable {
        public var sha256: String, content: AttachmentContent
        public init(sha256: String, content: AttachmentContent) {
            self.sha256 = sha256
            self.content = content
        }
    }

    public struct StoredReceipt: Sendable, Equatable {
        public var receipt: AttachmentReceipt, account: String?, size: Int64?
        public init(receipt: AttachmentReceipt, account: String?, size: Int64?) {
            (self.receipt, self.account, self.size) = (receipt, account, size)
        }
    }

    public var node: NodeID
    public var signingKey: DeviceKey
    public var revisions: [StoredRevision] = []
    public var setAside: [SetAside] = []
    public var accounts: [Account] = []
    public var codes: [Code] = []
    public var devices: [StoredDevice] = []
    public var audit: [AuditEntry] = []
    public var references: [Reference] = []
    /// Manifests' canonical bytes by their hash.
    public var manifests: [String: [UInt8]] = [:]
    public var receipts: [StoredReceipt] = []

    public init(node: NodeID, signingKey: DeviceKey) {
        self.node = node
        self.signingKey = signingKey
    }
}
