import FieldSyncCore

/// An account on the central node: a person with a role.
public struct Account: Sendable, Equatable {
    public var name: String
    public var role: Role
    public var created: Int64
    public var revoked: Int64?
    public var devices: Int

    public init(name: String, role: Role, created: Int64, revoked: Int64? = nil, devices: Int = 0) {
        self.name = name
        self.role = role
        self.created = created
        self.revoked = revoked
        self.devices = devices
    }

    public var json: JSONValue {
        [
            "name": .string(name), "role": .string(role.rawValue), "created": .int(created),
            "revoked": revoked.map(JSONValue.int) ?? .null, "devices": .int(Int64(devices)),
        ]
    }

    public init(json: JSONValue) throws(ProtocolError) {
        guard let name = json["name"]?.stringValue, let role = json["role"]?.stringValue.flatMap(Role.init(rawValue:)),
            case .int(let created)? = json["created"]
        else { throw ProtocolError(.malformed, "account: expected name, role and created") }
        self.init(
            name: name, role: role, created: created, revoked: json["revoked"]?.intValue, devices: Int(json["devices"]?.intValue ?? 0))
    }
}

/// An enrolled device: one node id with its public key, belonging to an account.
public struct Device: Sendable, Equatable {
    public var node: NodeID
    public var account: String
    public var role: Role
    public var publicKey: String
    public var enrolled: Int64
    public var revoked: Int64?

    public init(node: NodeID, account: String, role: Role, publicKey: String, enrolled: Int64, revoked: Int64? = nil) {
        self.node = node
        self.account = account
        self.role = role
        self.publicKey = publicKey
        self.enrolled = enrolled
        self.revoked = revoked
    }

    public var json: JSONValue {
        [
            "node": .string(node.rawValue), "user": .string(account), "role": .string(role.rawValue),
            "public_key": .string(publicKey), "enrolled": .int(enrolled), "revoked": revoked.map(JSONValue.int) ?? .null,
        ]
    }

    public init(json: JSONValue) throws(ProtocolError) {
        guard let nodeText = json["node"]?.stringValue, let node = NodeID(nodeText), let user = json["user"]?.stringValue,
            let role = json["role"]?.stringValue.flatMap(Role.init(rawValue:)), let key = json["public_key"]?.stringValue,
            case .int(let enrolled)? = json["enrolled"]
        else { throw ProtocolError(.malformed, "device: expected node, user, role, public_key and enrolled") }
        self.init(node: node, account: user, role: role, publicKey: key, enrolled: enrolled, revoked: json["revoked"]?.intValue)
    }
}

/// One line of the append-only audit log.
public struct AuditEntry: Sendable, Equatable {
    public var seq: Int64
    public var time: Int64
    public var user: String?
    public var device: String?
    /// enrol, enrol-failed, add-user, push, push+resolve, pull, revoke-user, revoke-device, register-node
    public var action: String
    public var detail: String
    public var address: String?

    public init(seq: Int64 = 0, time: Int64, user: String?, device: String?, action: String, detail: String, address: String?) {
        self.seq = seq
        self.time = time
        self.user = user
        self.device = device
        self.action = action
        self.detail = detail
        self.address = address
    }

    public var json: JSONValue {
        [
            "seq": .int(seq), "time": .int(time), "user": user.map(JSONValue.string) ?? .null,
            "device": device.map(JSONValue.string) ?? .null, "action": .string(action), "detail": .string(detail),
            "address": address.map(JSONValue.string) ?? .null,
        ]
    }

    public init(json: JSONValue) throws(ProtocolError) {
        guard case .int(let seq)? = json["seq"], case .int(let time)? = json["time"], let action = json["action"]?.stringValue,
            let detail = json["detail"]?.stringValue
        else { throw ProtocolError(.malformed, "audit entry: expected seq, time, action and detail") }
        self.init(
            seq: seq, time: time, user: json["user"]?.stringValue, device: json["device"]?.stringValue, action: action, detail: detail,
            address: json["address"]?.stringValue)
    }
}

/// Who a request comes from, once its bearer token checked out.
public struct Principal: Sendable, Equatable {
    public var account: String
    public var role: Role
    /// The device's node id the token was issued to.
    public var node: NodeID
    public var publicKey: String

    public init(account: String, role: Role, node: NodeID, publicKey: String) {
        self.account = account
        self.role = role
        self.node = node
        self.publicKey = publicKey
    }
}

/// Failed enrolment attempts per source address, kept in the storage so that every `serve` instance
/// sharing it sees the same count (spec 15.5).
public protocol EnrolmentAttemptStorage: Sendable {
    /// How many failures from `address` were recorded at or after `since` (ms since 1970).
    func enrolmentFailures(from address: String, since: Int64) async throws -> Int
    /// Records a failure at `time`, forgets every failure before `forgetBefore` (any address), and
    /// keeps at most `cap` addresses (the longest quiet ones go first), in one transaction.
    func recordEnrolmentFailure(from address: String, at time: Int64, forgetBefore: Int64, cap: Int) async throws
}

/// Accounts, devices, enrolment codes and the audit log of the central node. Like ``SyncStorage`` it
/// hides the database, so a PostgreSQL backend can provide it too. Secrets are stored only as SHA-256 hashes.
public protocol AccountStorage: EnrolmentAttemptStorage {
    /// Creates an account with a one-time code, or issues a further code for an existing, unrevoked
    /// account with the same role (earlier unused codes stay valid until they expire).
    func addAccount(name: String, role: Role, codeHash: String, expires: Int64, now: Int64) async throws
    /// Redeems a code: registers the device and its token hash. Throws ``ProtocolError`` `.unauthorized`
    /// for an unknown, used or expired code, and `.conflictingDuplicate` for a node id already enrolled.
    /// `repeatable`: the request proved it holds `publicKey`; a code this very device (same node id,
    /// key and account, enrolled when the code was used) already redeemed within the code's lifetime
    /// then succeeds again, with `tokenHash` replacing the device's token (its answer was lost).
    func redeem(codeHash: String, node: NodeID, publicKey: String, tokenHash: String, repeatable: Bool, now: Int64) async throws
        -> Principal
    /// The unrevoked device a token hash belongs to, if any.
    func principal(tokenHash: String) async throws -> Principal?
    /// Adds a further node id for the device holding `tokenHash` (after a restore from backup).
    func registerNode(_ node: NodeID, for principal: Principal, tokenHash: String, now: Int64) async throws
    /// Every node with its key, account, role and revocation: what the server verifies pushes with.
    func keyDirectory() async throws -> KeyDirectory
    /// The same with each node's certificate and the central node's signing key that issued them:
    /// what `GET /v1/keys` and enrolment answer with.
    func certifiedKeyDirectory() async throws -> KeyDirectory
    /// An entity tag that changes whenever ``certifiedKeyDirectory()`` would (spec 8.6), computed
    /// without building it: with thousands of nodes, answering 304 must stay cheap.
    func keyDirectoryTag() async throws -> String
    /// The central node's signing key (base64): it certifies every node id (spec 15.9).
    func serverKey() async throws -> String
    /// The certificates of `nodes` (those that have one), for a pull page (spec 8.4).
    func certificates(of nodes: Set<NodeID>) async throws -> [NodeCertificate]
    func accounts() async throws -> [Account]
    func devices() async throws -> [Device]
    /// Revokes an account and all its devices; returns false when there is no such account.
    func revokeAccount(_ name: String, now: Int64) async throws -> Bool
    func revokeDevice(_ node: NodeID, now: Int64) async throws -> Bool
    func appendAudit(_ entry: AuditEntry) async throws
    /// Stores a pushed batch like ``SyncStorage/store(_:admit:)`` and appends the audit entry that
    /// `audit` makes of its outcome in the same transaction: a push is never stored without its line.
    /// `checked` carries the canonical texts encoded while the signatures were checked ahead.
    func store(
        _ revisions: [Revision], from owners: Set<NodeID>, checked: CheckedSignatures,
        authenticate: @escaping @Sendable (Revision) throws -> Void, admit: @escaping @Sendable (Revision, RecordState?) throws -> Void,
        audit: @escaping @Sendable (StoreOutcome) -> AuditEntry
    ) async throws -> StoreOutcome
    /// The newest `limit` entries, oldest first.
    func audit(limit: Int) async throws -> [AuditEntry]
}
