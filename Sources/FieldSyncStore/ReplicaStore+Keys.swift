import FieldSyncCore
import FieldSyncProtocol
import Foundation
import GRDB

/// What `fieldsync enroll` recorded: the server this replica belongs to, its bearer token and role.
public struct Enrolment: Sendable, Equatable {
    public var server: String
    public var token: String
    public var user: String
    public var role: Role
    /// `sha256:HEX` of the server's TLS public key, recorded at enrolment over HTTPS.
    public var pin: String?
    /// The server's certificate seen at enrolment (trusted, so a self-signed node works).
    public var pinnedCertificatePEM: String?
    /// An organisation CA given with `--ca-cert`.
    public var caCertificatePEM: String?
    /// The central node's signing key (base64), pinned at enrolment (or, for a replica enrolled
    /// before certificates existed, at its first sync since): only keys it certified are trusted.
    public var serverKey: String?

    public init(
        server: String, token: String, user: String, role: Role, pin: String? = nil, pinnedCertificatePEM: String? = nil,
        caCertificatePEM: String? = nil, serverKey: String? = nil
    ) {
        self.serverKey = serverKey
        self.server = server
        self.token = token
        self.user = user
        self.role = role
        self.pin = pin
        self.pinnedCertificatePEM = pinnedCertificatePEM
        self.caCertificatePEM = caCertificatePEM
    }
}

extension ReplicaStore {
    static func deviceKey(_ db: Database) throws -> DeviceKey {
        guard
            let bytes = try Data.fetchOne(db, sql: "SELECT unseal(private_key, 'device_key.private_key') FROM device_key WHERE id = 1")
        else {
            throw StoreError(.notAStore, "the replica has no device key")
        }
        return try DeviceKey(rawRepresentation: Array(bytes))
    }

    static func storeDeviceKey(_ db: Database, _ key: DeviceKey, now: Int64) throws {
        try db.execute(
            sql: """
                INSERT OR REPLACE INTO device_key (id, private_key, public_key, created)
                VALUES (1, seal(?, 'device_key.private_key'), seal(?, 'device_key.public_key'), ?)
                """,
            arguments: [Data(key.rawRepresentation), key.publicKeyBase64, now])
    }

    /// The enrolment proof for `code`: the device key's signature of `EnrolRequest.proofBytes`.
    public func enrolmentProof(code: String) throws -> String {
        try read { db in try Self.deviceKey(db).signature(for: EnrolRequest.proofBytes(code: code, node: try Self.identity(db).node)) }
    }

    /// Signs `revision` as given with this replica's device key. The CLI never composes revisions
    /// this way; tests do, to act as a modified client holding a documenter's own key would.
    public func sign(_ revision: Revision) throws -> Revision {
        try read { db in try Self.deviceKey(db).sign(revision) }
    }

    /// The node id (and, for a re-enrolment, the device key) that `enroll` offered `server` and has
    /// not yet heard back about: offered again when the answer was lost, so the repeated request
    /// is the same device's (spec 15.4). Nil when there is none.
    public func pendingEnrolment(server: String) throws -> PendingEnrolment? {
        try read { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT unseal(server, 'pending_enrolment.server') AS server,
                            unseal(private_key, 'pending_enrolment.private_key') AS private_key, node, nonce, replacing, remint_all
                        FROM pending_enrolment WHERE id = 1
                        """),
                (row["server"] as String) == server,
                let node = NodeID(row["node"]), let replacing = NodeID(row["replacing"])
            else { return nil }
            let key = try (row["private_key"] as Data?).map { try DeviceKey(rawRepresentation: Array($0)) }
            return PendingEnrolment(key: key, node: node, nonce: row["nonce"], replacing: replacing, remintAll: row["remint_all"])
        }
    }

    public func savePendingEnrolment(server: String, _ pending: PendingEnrolment) throws {
        try write { db in
            try db.execute(
                sql:
                    """
                    INSERT OR REPLACE INTO pending_enrolment (id, server, private_key, node, nonce, replacing, remint_all)
                    VALUES (1, seal(?, 'pending_enrolment.server'), seal(?, 'pending_enrolment.private_key'), ?, ?, ?, ?)
                    """,
                arguments: [
                    server, pending.key.map { Data($0.rawRepresentation) }, pending.node.rawValue, pending.nonce,
                    pending.replacing.rawValue,
                    pending.remintAll,
                ])
        }
    }

    /// Signs `bytes` with the device key (base64 Ed25519): the enrolment proof (spec 15.4).
    public func signWithDeviceKey(_ bytes: [UInt8]) throws -> String {
        try read { db in try Self.deviceKey(db).signature(for: bytes) }
    }

    /// Everything an accepted enrolment changes in the replica, in one transaction: the new device
    /// key (a re-enrolment), the node id it enrolled (when not the current one: recorded with its
    /// nonce, the current one retired, and with `remintingAllOf` everything that one wrote
    /// re-minted under the new id), the enrolment, and the node's certificate. Returns how many
    /// revisions were re-minted.
    @discardableResult
    public func completeEnrolment(
        _ enrolment: Enrolment, certificate: NodeCertificate, key: DeviceKey?, node: (id: NodeID, nonce: String?)?,
        remintingAllOf: NodeID?, reason: String, now: Int64
    ) throws -> Int {
        try write { db in
            let identity = try Self.identity(db)
            if let key {
                // The old public key stays known for the old node ids, so what it signed verifies.
                let old = try Self.deviceKey(db).publicKeyBase64
                for own in [identity.node] + identity.retiredNodes {
                    try db.execute(
                        sql: """
                            INSERT INTO node_key (node, public_key, user) VALUES (?1, seal(?2, 'node_key.public_key/' || ?1),
                                seal(?3, 'node_key.user/' || ?1))
                            ON CONFLICT (node) DO NOTHING
                            """,
                        arguments: [own.rawValue, old, identity.name])
                }
                try Self.storeDeviceKey(db, key, now: now)
            }
            var reminted = 0
            if let node, node.id != identity.node {
                if let nonce = node.nonce {
                    try db.execute(
                        sql: "INSERT OR REPLACE INTO node_nonce (node, nonce) VALUES (?, ?)", arguments: [node.id.rawValue, nonce])
                }
                if let old = remintingAllOf, old == identity.node, try Self.knowledge(db)[old] > 0 {
                    reminted = try Self.remint(
                        db, nil, from: 1, replacement: node.id, capping: [:], reason: "\(reason); re-minted as \(node.id)", now: now)
                } else {
                    try Self.retireNodeID(db, reason: reason, now: now, replacement: node.id)
                }
                try db.execute(sql: "UPDATE replica SET backup = NULL WHERE id = 1")
            }
            try Self.storeEnrolment(db, enrolment, now: now)
            try db.execute(sql: "DELETE FROM pending_enrolment")
            try Self.rememberKeys(db, [KeyEntry(certificate: certificate)], from: .centralNode(serverKey: enrolment.serverKey))
            _ = try Self.authority(db, now: now)
            return reminted
        }
    }

    /// This replica's public signing key (base64).
    public func publicKey() throws -> String {
        try read { db in try Self.deviceKey(db).publicKeyBase64 }
    }

    public func enrolment() throws -> Enrolment? {
        try read { db in
            try Self.enrolment(db)
        }
    }

    static func enrolment(_ db: Database) throws -> Enrolment? {
        guard
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT unseal(server, 'enrolment.server') AS server, unseal(token, 'enrolment.token') AS token,
                        unseal(user, 'enrolment.user') AS user, unseal(role, 'enrolment.role') AS role, unseal(pin, 'enrolment.pin') AS pin,
                        unseal(pinned_cert, 'enrolment.pinned_cert') AS pinned_cert, unseal(ca_cert, 'enrolment.ca_cert') AS ca_cert,
                        unseal(server_key, 'enrolment.server_key') AS server_key
                    FROM enrolment WHERE id = 1
                    """),
            let role = Role(rawValue: row["role"])
        else { return nil }
        return Enrolment(
            server: row["server"], token: row["token"], user: row["user"], role: role, pin: row["pin"],
            pinnedCertificatePEM: row["pinned_cert"], caCertificatePEM: row["ca_cert"], serverKey: row["server_key"])
    }

    static func storeEnrolment(_ db: Database, _ enrolment: Enrolment, now: Int64) throws {
        try db.execute(
            sql: """
                INSERT OR REPLACE INTO enrolment (id, server, token, user, role, enrolled, pin, pinned_cert, ca_cert, server_key)
                VALUES (1, seal(?, 'enrolment.server'), seal(?, 'enrolment.token'), seal(?, 'enrolment.user'), seal(?, 'enrolment.role'), ?,
                    seal(?, 'enrolment.pin'), seal(?, 'enrolment.pinned_cert'), seal(?, 'enrolment.ca_cert'), seal(?, 'enrolment.server_key'))
                """,
            arguments: [
                enrolment.server, enrolment.token, enrolment.user, enrolment.role.rawValue, now, enrolment.pin,
                enrolment.pinnedCertificatePEM, enrolment.caCertificatePEM, enrolment.serverKey,
            ])
        try db.execute(sql: "UPDATE replica SET server = seal(?, 'replica.server') WHERE id = 1", arguments: [enrolment.server])
    }

    public func saveEnrolment(_ enrolment: Enrolment, now: Int64) throws {
        try write { db in
            try Self.storeEnrolment(db, enrolment, now: now)
            // Enrolled, only admins end conflicts: the records are recomputed under that rule.
            _ = try Self.authority(db, now: now)
        }
    }

    /// The keys this replica knows, without parsing their certificates: enough to verify signatures
    /// ahead of a transaction (``CheckedSignatures`` counts only where the transaction holds the same key).
    public func signingKeys() throws -> KeyDirectory {
        try read { db in try Self.keyDirectory(db, certificates: false) }
    }

    /// The keys this replica knows: its own (for its current and retired node ids) and those it learned
    /// from the server's key directory or from bundles.
    public func keyDirectory() throws -> KeyDirectory {
        try read { db in try Self.keyDirectory(db) }
    }

    /// The keys this replica knows, with their certificates, and as ``KeyDirectory/serverKey`` the
    /// central node key pinned at enrolment (nil on an unenrolled replica).
    /// `certificates`: parse each entry's certificate (for judging who vouches for a key); the
    /// signature checks of a pulled page need only the keys, and with thousands of nodes parsing
    /// them all on every page would cost more than the page.
    static func keyDirectory(_ db: Database, certificates: Bool = true, only nodes: Set<NodeID>? = nil) throws -> KeyDirectory {
        var entries: [KeyEntry] = []
        let rows: [Row]
        let columns = """
            node, unseal(public_key, 'node_key.public_key/' || node) AS public_key, unseal(user, 'node_key.user/' || node) AS user,
                role, revoked\(certificates ? ", unseal(certificate, 'node_key.certificate/' || node) AS certificate" : "")
            """
        if let nodes {
            let list = nodes.map(\.rawValue).sorted()
            rows = try Row.fetchAll(
                db, sql: "SELECT \(columns) FROM node_key WHERE node IN (\(databaseQuestionMarks(count: list.count)))",
                arguments: StatementArguments(list))
        } else {
            rows = try Row.fetchAll(db, sql: "SELECT \(columns) FROM node_key")
        }
        for row in rows {
            guard let node = NodeID(row["node"]) else { continue }
            let certificate =
                certificates
                ? (row["certificate"] as String?).flatMap { try? NodeCertificate(json: JSONValue(parsing: $0), at: "certificate") } : nil
            entries.append(
                KeyEntry(
                    node: node, publicKey: row["public_key"], user: row["user"],
                    role: (row["role"] as String?).flatMap(Role.init(rawValue:)),
                    revoked: row["revoked"], certificate: certificate))
        }
        let identity = try identity(db)
        let own = try deviceKey(db).publicKeyBase64
        for node in [identity.node] + identity.retiredNodes where !entries.contains(where: { $0.node == node }) {
            entries.append(KeyEntry(node: node, publicKey: own, user: identity.name))
        }
        return KeyDirectory(entries, serverKey: try enrolment(db)?.serverKey)
    }

    /// Learns keys offered by `source` (spec 17.2). Returns the nodes whose key learned on first use
    /// was replaced by the one the central node certified.
    @discardableResult
    public func rememberKeys(_ entries: [KeyEntry], from source: KeySource = .bundle) throws -> Set<NodeID> {
        try write { db in
            let replaced = try Self.rememberKeys(db, entries, from: source)
            _ = try Self.authority(db, now: Int64(Date().timeIntervalSince1970 * 1000))
            return replaced
        }
    }

    /// - The central node's directory (`.centralNode`): its signing key must be the one pinned at
    ///   enrolment (a replica enrolled before certificates existed pins it now), and every entry must
    ///   carry its certificate. Its user, role and revocation replace what was known. A certified
    ///   key replaces one learned on first use (the certificate wins); revisions signed by the
    ///   losing key then no longer verify, and are held back at the next sync.
    /// - A bundle (`.bundle`): on a replica that pinned a central node key, only entries that carry
    ///   its certificate are learned, with the certificate's user and role; others are not, and the
    ///   revisions signed by them are held (spec 12.4). On an unenrolled replica, a key for a node it
    ///   does not know is trusted on first use; its claims about user and role are not.
    /// A node whose known key is certified is never given another one.
    /// A `node_key` row's values: `?1` node, `?2` public key, `?3` user, `?4` role, `?5` revoked, `?6` certificate.
    /// The role stays in clear: who may resolve is computed from it in every transaction, and the
    /// replica's `authority` lists the admins' node ids anyway (docs/SECURITY.md).
    static let nodeKeyValues = """
        (?1, seal(?2, 'node_key.public_key/' || ?1), seal(?3, 'node_key.user/' || ?1), ?4, ?5,
            seal(?6, 'node_key.certificate/' || ?1))
        """

    static func rememberKeys(_ db: Database, _ entries: [KeyEntry], from source: KeySource) throws -> Set<NodeID> {
        guard !entries.isEmpty else { return [] }
        // Only the entries being learned are looked up: with thousands of nodes, reading (and
        // parsing the certificates of) the whole directory for a page's few authors would dominate.
        let known = try Self.keyDirectory(db, only: Set(entries.map(\.node)))
        var pinned = known.serverKey
        var replaced = Set<NodeID>()
        func store(_ entry: KeyEntry, authoritative: Bool) throws {
            try db.execute(
                sql: authoritative
                    ? """
                    INSERT INTO node_key (node, public_key, user, role, revoked, certificate) VALUES \(Self.nodeKeyValues)
                    ON CONFLICT (node) DO UPDATE SET public_key = excluded.public_key, user = excluded.user, role = excluded.role,
                        revoked = COALESCE(excluded.revoked, revoked), certificate = excluded.certificate
                    """
                    : """
                    INSERT INTO node_key (node, public_key, user, role, revoked, certificate) VALUES \(Self.nodeKeyValues)
                    ON CONFLICT (node) DO NOTHING
                    """,
                arguments: [
                    entry.node.rawValue, entry.publicKey, entry.user, entry.role?.rawValue, entry.revoked,
                    entry.certificate?.json.canonicalText,
                ])
        }
        switch source {
        case .centralNode(let serverKey):
            if let serverKey {
                if let pinned, pinned != serverKey {
                    throw ProtocolError(
                        .badSignature,
                        "the central node signs with key \(CentralNodeKey.fingerprint(ofPublicKey: serverKey)), not the \(CentralNodeKey.fingerprint(ofPublicKey: pinned)) pinned at enrolment; refusing its directory"
                    )
                }
                if pinned == nil, try Self.enrolment(db) != nil {
                    try db.execute(
                        sql: "UPDATE enrolment SET server_key = seal(?, 'enrolment.server_key') WHERE id = 1", arguments: [serverKey])
                    pinned = serverKey
                }
            }
            for entry in entries {
                if let pinned, !entry.isCertified(by: pinned) {
                    throw ProtocolError(.badSignature, "the central node's directory lists node \(entry.node) without a valid certificate")
                }
                if let existing = known[entry.node], existing.publicKey != entry.publicKey {
                    if let pinned, existing.isCertified(by: pinned) {
                        throw ProtocolError(
                            .badSignature,
                            "node \(entry.node) is presented with a different key than the certified one this replica knows; refusing it")
                    }
                    replaced.insert(entry.node)
                }
                try store(entry, authoritative: true)
            }
        case .bundle:
            for entry in entries {
                let existing = known[entry.node]
                if let pinned {
                    // Enrolled: a bundle introduces a key only with the central node's certificate.
                    guard let certificate = entry.certificate, entry.isCertified(by: pinned) else { continue }
                    if let existing, existing.publicKey != entry.publicKey {
                        if existing.isCertified(by: pinned) { continue }
                        replaced.insert(entry.node)
                    }
                    try store(KeyEntry(certificate: certificate, revoked: existing?.revoked), authoritative: true)
                } else {
                    if let existing, existing.publicKey != entry.publicKey {
                        throw ProtocolError(
                            .badSignature,
                            "node \(entry.node) is presented with a different key than the one this replica knows; refusing it")
                    }
                    // Trust on first use: the key only; a bundle's claims of user and role are not trusted.
                    try store(KeyEntry(node: entry.node, publicKey: entry.publicKey, certificate: entry.certificate), authoritative: false)
                }
            }
        }
        return replaced
    }
}

/// A node id (and maybe a new device key) that `enroll` offered and has not heard back about.
public struct PendingEnrolment: Sendable {
    public var key: DeviceKey?
    public var node: NodeID
    public var nonce: String
    public var replacing: NodeID
    public var remintAll: Bool

    public init(key: DeviceKey?, node: NodeID, nonce: String, replacing: NodeID, remintAll: Bool) {
        self.key = key
        self.node = node
        self.nonce = nonce
        self.replacing = replacing
        self.remintAll = remintAll
    }
}

/// Where keys offered to a replica come from.
public enum KeySource: Sendable, Equatable {
    /// The central node's key directory, over the pinned connection, with the signing key it names.
    case centralNode(serverKey: String?)
    /// A bundle file: anyone may have written it.
    case bundle
}
