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

    public init(
        server: String, token: String, user: String, role: Role, pin: String? = nil, pinnedCertificatePEM: String? = nil,
        caCertificatePEM: String? = nil
    ) {
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
        guard let bytes = try Data.fetchOne(db, sql: "SELECT private_key FROM device_key WHERE id = 1") else {
            throw StoreError(.notAStore, "the replica has no device key")
        }
        return try DeviceKey(rawRepresentation: Array(bytes))
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

    /// This replica's public signing key (base64).
    public func publicKey() throws -> String {
        try read { db in try Self.deviceKey(db).publicKeyBase64 }
    }

    public func enrolment() throws -> Enrolment? {
        try read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT server, token, user, role, pin, pinned_cert, ca_cert FROM enrolment WHERE id = 1"),
                let role = Role(rawValue: row["role"])
            else { return nil }
            return Enrolment(
                server: row["server"], token: row["token"], user: row["user"], role: role, pin: row["pin"],
                pinnedCertificatePEM: row["pinned_cert"], caCertificatePEM: row["ca_cert"])
        }
    }

    public func saveEnrolment(_ enrolment: Enrolment, now: Int64) throws {
        try write { db in
            try db.execute(
                sql: """
                    INSERT OR REPLACE INTO enrolment (id, server, token, user, role, enrolled, pin, pinned_cert, ca_cert)
                    VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    enrolment.server, enrolment.token, enrolment.user, enrolment.role.rawValue, now, enrolment.pin,
                    enrolment.pinnedCertificatePEM, enrolment.caCertificatePEM,
                ])
            try db.execute(sql: "UPDATE replica SET server = ? WHERE id = 1", arguments: [enrolment.server])
            // Enrolled, only admins end conflicts: the records are recomputed under that rule.
            _ = try Self.authority(db, now: now)
        }
    }

    /// The keys this replica knows: its own (for its current and retired node ids) and those it learned
    /// from the server's key directory or from bundles.
    public func keyDirectory() throws -> KeyDirectory {
        try read { db in try Self.keyDirectory(db) }
    }

    static func keyDirectory(_ db: Database) throws -> KeyDirectory {
        var entries: [KeyEntry] = []
        for row in try Row.fetchAll(db, sql: "SELECT node, public_key, user, role, revoked FROM node_key") {
            guard let node = NodeID(row["node"]) else { continue }
            entries.append(KeyEntry(
                node: node, publicKey: row["public_key"], user: row["user"], role: (row["role"] as String?).flatMap(Role.init(rawValue:)),
                revoked: row["revoked"]))
        }
        let identity = try identity(db)
        let own = try deviceKey(db).publicKeyBase64
        for node in [identity.node] + identity.retiredNodes where !entries.contains(where: { $0.node == node }) {
            entries.append(KeyEntry(node: node, publicKey: own, user: identity.name))
        }
        return KeyDirectory(entries)
    }

    /// Learns keys. A node whose key is already known with a different value is refused: a key never
    /// changes, so a different one means forgery.
    public func rememberKeys(_ entries: [KeyEntry]) throws {
        try write { db in
            try Self.rememberKeys(db, entries)
            _ = try Self.authority(db, now: Int64(Date().timeIntervalSince1970 * 1000))
        }
    }

    static func rememberKeys(_ db: Database, _ entries: [KeyEntry]) throws {
            let known = try Self.keyDirectory(db)
            for entry in entries {
                if let existing = known[entry.node], existing.publicKey != entry.publicKey {
                    throw ProtocolError(.badSignature, "node \(entry.node) is presented with a different key than the one this replica knows; refusing it")
                }
                try db.execute(
                    sql: """
                        INSERT INTO node_key (node, public_key, user, role, revoked) VALUES (?, ?, ?, ?, ?)
                        ON CONFLICT (node) DO UPDATE SET user = COALESCE(excluded.user, user),
                            role = COALESCE(excluded.role, role), revoked = COALESCE(excluded.revoked, revoked)
                        """,
                    arguments: [entry.node.rawValue, entry.publicKey, entry.user, entry.role?.rawValue, entry.revoked])
            }
    }
}
