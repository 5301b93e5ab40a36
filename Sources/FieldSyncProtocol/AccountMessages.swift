import FieldSyncCore

/// `POST /v1/enroll` request: a one-time code, the device's node id and public key, and a proof
/// that the sender holds the key (spec 15.4): what lets a repeated request, after its answer was
/// lost, get a token again.
public struct EnrolRequest: Sendable, Equatable {
    public var code: String
    public var node: NodeID
    public var publicKey: String
    /// Base64 Ed25519 signature of ``proofBytes(code:node:)`` by the device key.
    public var proof: String?
    /// The nonce that binds `node` to `publicKey` (``NodeBinding``, spec 2.1).
    public var nonce: String?

    public init(code: String, node: NodeID, publicKey: String, proof: String? = nil, nonce: String? = nil) {
        self.code = code
        self.node = node
        self.publicKey = publicKey
        self.proof = proof
        self.nonce = nonce
    }

    /// What the proof signs: `fieldsync-enrol:<normalised code>:<node>`, UTF-8.
    public static func proofBytes(code: String, node: NodeID) -> [UInt8] {
        Array("fieldsync-enrol:\(Secrets.normaliseCode(code)):\(node.rawValue)".utf8)
    }

    /// Whether `proof` is the device key's signature for this request's code and node.
    public var hasValidProof: Bool {
        guard let proof else { return false }
        return SignatureCheck.isValidSignature(proof, of: Self.proofBytes(code: code, node: node), publicKeyBase64: publicKey)
    }

    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "protocol": .int(SyncProtocol.version), "code": .string(code), "node": .string(node.rawValue), "public_key": .string(publicKey),
        ]
        if let proof { o["proof"] = .string(proof) }
        if let nonce { o["nonce"] = .string(nonce) }
        return .object(o)
    }

    public init(json: JSONValue) throws(ProtocolError) {
        let o = try SyncProtocol.object(json, "enrol request")
        try SyncProtocol.checkVersion(o)
        guard let code = o["code"]?.stringValue, !code.isEmpty, code.count <= 200 else {
            throw ProtocolError(.malformed, "code: expected a string")
        }
        guard let nodeText = o["node"]?.stringValue, let node = NodeID(nodeText) else {
            throw ProtocolError(.malformed, "node: expected a node id")
        }
        guard let key = o["public_key"]?.stringValue, SignatureCheck.isPublicKey(key) else {
            throw ProtocolError(.malformed, "public_key: expected a base64 Ed25519 public key")
        }
        guard !SignatureCheck.isSmallOrderKey(key) else {
            throw ProtocolError(.malformed, "public_key: a key of small order, whose signatures anyone could forge")
        }
        var proof: String?
        if let value = o["proof"] {
            guard let text = value.stringValue, text.utf8.count <= 200 else {
                throw ProtocolError(.malformed, "proof: expected a base64 signature")
            }
            proof = text
        }
        var nonce: String?
        if let value = o["nonce"] {
            guard let text = value.stringValue, text.utf8.count == 32 else {
                throw ProtocolError(.malformed, "nonce: expected 32 hex digits")
            }
            nonce = text
        }
        self.init(code: code, node: node, publicKey: key, proof: proof, nonce: nonce)
    }
}

/// `POST /v1/enroll` response: the bearer token (shown once) and who the device belongs to.
public struct EnrolResponse: Sendable, Equatable {
    public var token: String
    public var user: String
    public var role: Role
    public var serverNode: NodeID
    /// The central node's signing key (base64), which the replica pins (spec 15.9).
    public var serverKey: String?
    /// The certificate of the enrolled node, signed with `serverKey`.
    public var certificate: NodeCertificate?

    public init(token: String, user: String, role: Role, serverNode: NodeID, serverKey: String? = nil, certificate: NodeCertificate? = nil)
    {
        self.token = token
        self.user = user
        self.role = role
        self.serverNode = serverNode
        self.serverKey = serverKey
        self.certificate = certificate
    }

    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "protocol": .int(SyncProtocol.version), "token": .string(token), "user": .string(user), "role": .string(role.rawValue),
            "server_node": .string(serverNode.rawValue),
        ]
        if let serverKey { o["server_key"] = .string(serverKey) }
        if let certificate { o["certificate"] = certificate.json }
        return .object(o)
    }

    public init(json: JSONValue) throws(ProtocolError) {
        let o = try SyncProtocol.object(json, "enrol response")
        try SyncProtocol.checkVersion(o)
        guard let token = o["token"]?.stringValue, let user = o["user"]?.stringValue,
            let role = o["role"]?.stringValue.flatMap(Role.init(rawValue:)), let nodeText = o["server_node"]?.stringValue,
            let node = NodeID(nodeText)
        else { throw ProtocolError(.malformed, "enrol response: expected token, user, role and server_node") }
        var serverKey: String?
        if let value = o["server_key"] {
            guard let text = value.stringValue, SignatureCheck.isPublicKey(text) else {
                throw ProtocolError(.malformed, "server_key: expected a base64 Ed25519 public key")
            }
            serverKey = text
        }
        let certificate = try o["certificate"].map { json throws(ProtocolError) in try NodeCertificate(json: json, at: "certificate") }
        self.init(token: token, user: user, role: role, serverNode: node, serverKey: serverKey, certificate: certificate)
    }
}

/// `POST /v1/users` request (admin): a new account and how long its enrolment code lives.
public struct AddUserRequest: Sendable, Equatable {
    public var name: String
    public var role: Role
    public var expiresHours: Int

    public init(name: String, role: Role, expiresHours: Int = 24) {
        self.name = name
        self.role = role
        self.expiresHours = expiresHours
    }

    public var json: JSONValue {
        [
            "protocol": .int(SyncProtocol.version), "name": .string(name), "role": .string(role.rawValue),
            "expires_hours": .int(Int64(expiresHours)),
        ]
    }

    public init(json: JSONValue) throws(ProtocolError) {
        let o = try SyncProtocol.object(json, "add-user request")
        try SyncProtocol.checkVersion(o)
        guard let name = o["name"]?.stringValue, AccountName.isValid(name) else {
            throw ProtocolError(.malformed, "name: \(AccountName.rule)")
        }
        guard let role = o["role"]?.stringValue.flatMap(Role.init(rawValue:)) else {
            throw ProtocolError(.malformed, "role: expected admin or documenter")
        }
        var hours: Int64 = 24
        if let h = o["expires_hours"] {
            guard case .int(let value) = h, (1...720).contains(value) else {
                throw ProtocolError(.malformed, "expires_hours: expected 1 to 720")
            }
            hours = value
        }
        self.init(name: name, role: role, expiresHours: Int(hours))
    }
}

/// Account names: what admins type and the audit log shows.
public enum AccountName {
    public static let rule = "1 to 64 characters of letters, digits, '.', '_' and '-'"

    public static func isValid(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64 && name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-" }
    }
}
