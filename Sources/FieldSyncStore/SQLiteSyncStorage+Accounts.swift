import Crypto
import FieldSyncCore
import FieldSyncProtocol
import Foundation
import GRDB

extension ReplicaStore {
    static func addAccount(_ db: Database, name: String, role: Role, codeHash: String, expires: Int64, now: Int64) throws {
        if let row = try Row.fetchOne(db, sql: "SELECT role, revoked FROM account WHERE name = ?", arguments: [name]) {
            guard (row["revoked"] as Int64?) == nil else {
                throw ProtocolError(.conflictingDuplicate, "account \(name) was revoked; choose another name")
            }
            guard (row["role"] as String) == role.rawValue else {
                throw ProtocolError(.conflictingDuplicate, "account \(name) exists with role \(row["role"] as String)")
            }
        } else {
            try db.execute(sql: "INSERT INTO account (name, role, created) VALUES (?, ?, ?)", arguments: [name, role.rawValue, now])
        }
        try db.execute(
            sql: "INSERT INTO enrolment_code (hash, account, created, expires) VALUES (?, ?, ?, ?)",
            arguments: [codeHash, name, now, expires])
    }

    static func appendAudit(_ db: Database, _ entry: AuditEntry) throws {
        try db.execute(
            sql: "INSERT INTO audit (time, user, device, action, detail, address) VALUES (?, ?, ?, ?, ?, ?)",
            arguments: [entry.time, entry.user, entry.device, entry.action, entry.detail, entry.address])
    }

    /// Creates an account directly on the server's store (`fieldsync server add-user`), audited as
    /// done on the server machine.
    public func addAccount(name: String, role: Role, codeHash: String, expires: Int64, now: Int64) throws {
        try write { db in
            try Self.addAccount(db, name: name, role: role, codeHash: codeHash, expires: expires, now: now)
            try Self.appendAudit(
                db,
                AuditEntry(
                    time: now, user: nil, device: nil, action: "add-user",
                    detail: "issued an enrolment code for \(name) (\(role.rawValue)) on the server machine",
                    address: nil))
        }
    }

    static func principal(_ row: Row) -> Principal? {
        guard let node = NodeID(row["node"]), let role = Role(rawValue: row["role"]) else { return nil }
        return Principal(account: row["account"], role: role, node: node, publicKey: row["public_key"])
    }
}

extension SQLiteSyncStorage: AccountStorage {
    public func addAccount(name: String, role: Role, codeHash: String, expires: Int64, now: Int64) async throws {
        try await replica.asyncWrite { db in
            try ReplicaStore.addAccount(db, name: name, role: role, codeHash: codeHash, expires: expires, now: now)
        }
    }

    public func redeem(codeHash: String, node: NodeID, publicKey: String, tokenHash: String, repeatable: Bool, now: Int64) async throws
        -> Principal
    {
        try await replica.asyncWrite { db in
            guard
                let code = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT c.account, c.expires, c.used, a.role, a.revoked FROM enrolment_code c JOIN account a ON a.name = c.account
                        WHERE c.hash = ?
                        """, arguments: [codeHash])
            else { throw ProtocolError(.unauthorized, "the enrolment code is not valid") }
            if let used = code["used"] as Int64? {
                // The same device asking again, because the answer to its enrolment was lost: it proved
                // it holds the key, and it is the device this code enrolled, so it gets a new token.
                guard repeatable, (code["expires"] as Int64) > now, (code["revoked"] as Int64?) == nil,
                    let device = try Row.fetchOne(
                        db, sql: "SELECT account, public_key, token_hash, enrolled, revoked FROM device WHERE node = ?",
                        arguments: [node.rawValue]),
                    (device["account"] as String) == (code["account"] as String), (device["public_key"] as String) == publicKey,
                    (device["enrolled"] as Int64) == used, (device["revoked"] as Int64?) == nil
                else { throw ProtocolError(.unauthorized, "the enrolment code was already used") }
                try db.execute(
                    sql: "UPDATE device SET token_hash = ? WHERE token_hash = ?", arguments: [tokenHash, device["token_hash"] as String])
                return Principal(account: code["account"], role: Role(rawValue: code["role"])!, node: node, publicKey: publicKey)
            }
            guard (code["expires"] as Int64) > now else {
                throw ProtocolError(.unauthorized, "the enrolment code has expired; ask an admin for a new one")
            }
            guard (code["revoked"] as Int64?) == nil else { throw ProtocolError(.unauthorized, "the account was revoked") }
            guard try Row.fetchOne(db, sql: "SELECT 1 FROM device WHERE node = ?", arguments: [node.rawValue]) == nil else {
                throw ProtocolError(.conflictingDuplicate, "node \(node) is already enrolled")
            }
            let account: String = code["account"]
            let role = Role(rawValue: code["role"])!
            try db.execute(sql: "UPDATE enrolment_code SET used = ? WHERE hash = ?", arguments: [now, codeHash])
            let certificate = try NodeCertificate.issue(
                node: node, publicKey: publicKey, user: account, role: role, issued: now, by: ReplicaStore.deviceKey(db))
            try db.execute(
                sql: "INSERT INTO device (node, account, public_key, token_hash, enrolled, certificate) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [node.rawValue, account, publicKey, tokenHash, now, certificate.json.canonicalText])
            return Principal(account: account, role: role, node: node, publicKey: publicKey)
        }
    }

    public func principal(tokenHash: String) async throws -> Principal? {
        try await replica.asyncRead { db in
            try Row.fetchOne(
                db,
                sql: """
                    SELECT d.node, d.account, d.public_key, a.role FROM device d JOIN account a ON a.name = d.account
                    WHERE d.token_hash = ? AND d.revoked IS NULL AND a.revoked IS NULL ORDER BY d.enrolled LIMIT 1
                    """, arguments: [tokenHash]
            ).flatMap(ReplicaStore.principal)
        }
    }

    public func registerNode(_ node: NodeID, for principal: Principal, tokenHash: String, now: Int64) async throws {
        try await replica.asyncWrite { db in
            if let owner = try String.fetchOne(db, sql: "SELECT token_hash FROM device WHERE node = ?", arguments: [node.rawValue]) {
                guard owner == tokenHash else { throw ProtocolError(.conflictingDuplicate, "node \(node) belongs to another device") }
                return
            }
            // Each restore or fork takes one; more than a handful means something else is going on.
            let held = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM device WHERE token_hash = ?", arguments: [tokenHash]) ?? 0
            guard held < SyncProtocol.maximumNodesPerDevice else {
                throw ProtocolError.tooManyNodes(held: held)
            }
            let certificate = try NodeCertificate.issue(
                node: node, publicKey: principal.publicKey, user: principal.account, role: principal.role, issued: now,
                by: ReplicaStore.deviceKey(db))
            try db.execute(
                sql: "INSERT INTO device (node, account, public_key, token_hash, enrolled, certificate) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [node.rawValue, principal.account, principal.publicKey, tokenHash, now, certificate.json.canonicalText])
        }
    }

    public func certificates(of nodes: Set<NodeID>) async throws -> [NodeCertificate] {
        guard !nodes.isEmpty else { return [] }
        return try await replica.asyncRead { db in
            let list = nodes.map(\.rawValue).sorted()
            return try String.fetchAll(
                db,
                sql:
                    "SELECT certificate FROM device WHERE certificate IS NOT NULL AND node IN (\(databaseQuestionMarks(count: list.count))) ORDER BY node",
                arguments: StatementArguments(list)
            ).compactMap { try? NodeCertificate(json: JSONValue(parsing: $0), at: "certificate") }
        }
    }

    public func enrolmentFailures(from address: String, since: Int64) async throws -> Int {
        try await replica.asyncRead { db in
            try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM enrolment_failure WHERE address = ? AND time >= ?", arguments: [address, since]) ?? 0
        }
    }

    public func recordEnrolmentFailure(from address: String, at time: Int64, forgetBefore: Int64, cap: Int) async throws {
        try await replica.asyncWrite { db in
            try db.execute(sql: "DELETE FROM enrolment_failure WHERE time < ?", arguments: [forgetBefore])
            try db.execute(sql: "INSERT INTO enrolment_failure (address, time) VALUES (?, ?)", arguments: [address, time])
            let addresses = try Int.fetchOne(db, sql: "SELECT COUNT(DISTINCT address) FROM enrolment_failure") ?? 0
            if addresses > cap {
                try db.execute(
                    sql: """
                        DELETE FROM enrolment_failure WHERE address IN (
                            SELECT address FROM enrolment_failure GROUP BY address ORDER BY MAX(time) LIMIT ?)
                        """, arguments: [addresses - cap])
            }
        }
    }

    public func serverKey() async throws -> String {
        try await replica.asyncRead { db in try ReplicaStore.deviceKey(db).publicKeyBase64 }
    }

    public func keyDirectory() async throws -> KeyDirectory {
        try await replica.asyncRead { db in
            KeyDirectory(
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT d.node, d.public_key, d.account, a.role, COALESCE(d.revoked, a.revoked) AS revoked
                        FROM device d JOIN account a ON a.name = d.account
                        """
                ).compactMap { row in
                    NodeID(row["node"]).map {
                        KeyEntry(
                            node: $0, publicKey: row["public_key"], user: row["account"], role: Role(rawValue: row["role"]),
                            revoked: row["revoked"])
                    }
                })
        }
    }

    /// Moves the directory version on by a random amount: a store restored from a backup would
    /// otherwise count up through versions it already handed out with other contents, and a
    /// client could take a stale directory for current. `serve` calls it once at start.
    public func startDirectoryEpoch() async throws {
        try await replica.asyncWrite { db in
            try db.execute(
                sql: "UPDATE replica SET directory_version = directory_version + ? WHERE id = 1",
                arguments: [Int64.random(in: 1...(1 << 40))])
        }
    }

    public func keyDirectoryTag() async throws -> String {
        try await certifyMissing()
        // Triggers raise `directory_version` with every change to a device or an account (schema
        // v7), so the tag is one row's read however many nodes the directory lists.
        return try await replica.asyncRead { db in
            let version = try Int64.fetchOne(db, sql: "SELECT directory_version FROM replica WHERE id = 1") ?? 0
            let key = CentralNodeKey.fingerprint(ofPublicKey: try ReplicaStore.deviceKey(db).publicKeyBase64)
            return "\"" + key.dropFirst("sha256:".count).prefix(16) + "-\(version)\""
        }
    }

    /// Devices enrolled before certificates existed get theirs once, on the first directory read.
    func certifyMissing() async throws {
        let uncertified = try await replica.asyncRead { db in
            try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM device WHERE certificate IS NULL)") ?? false
        }
        guard uncertified else { return }
        try await replica.asyncWrite { db in
            let key = try ReplicaStore.deviceKey(db)
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT d.node, d.public_key, d.account, a.role, d.enrolled FROM device d JOIN account a ON a.name = d.account
                    WHERE d.certificate IS NULL
                    """)
            {
                guard let node = NodeID(row["node"]), let role = Role(rawValue: row["role"]) else { continue }
                let certificate = try NodeCertificate.issue(
                    node: node, publicKey: row["public_key"], user: row["account"], role: role, issued: row["enrolled"], by: key)
                try db.execute(
                    sql: "UPDATE device SET certificate = ? WHERE node = ?", arguments: [certificate.json.canonicalText, node.rawValue])
            }
        }
    }

    public func certifiedKeyDirectory() async throws -> KeyDirectory {
        try await certifyMissing()
        return try await replica.asyncRead { db in
            let entries = try Row.fetchAll(
                db,
                sql: """
                    SELECT d.node, d.public_key, d.account, a.role, COALESCE(d.revoked, a.revoked) AS revoked, d.certificate
                    FROM device d JOIN account a ON a.name = d.account
                    """
            ).compactMap { row -> KeyEntry? in
                guard let node = NodeID(row["node"]) else { return nil }
                let certificate = (row["certificate"] as String?).flatMap {
                    try? NodeCertificate(json: JSONValue(parsing: $0), at: "certificate")
                }
                return KeyEntry(
                    node: node, publicKey: row["public_key"], user: row["account"], role: Role(rawValue: row["role"]),
                    revoked: row["revoked"],
                    certificate: certificate)
            }
            return KeyDirectory(entries, serverKey: try ReplicaStore.deviceKey(db).publicKeyBase64)
        }
    }

    public func accounts() async throws -> [Account] {
        try await replica.asyncRead { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT a.name, a.role, a.created, a.revoked, (SELECT COUNT(*) FROM device d WHERE d.account = a.name) AS devices
                    FROM account a ORDER BY a.name
                    """
            ).map { row in
                Account(
                    name: row["name"], role: Role(rawValue: row["role"]) ?? .documenter, created: row["created"], revoked: row["revoked"],
                    devices: row["devices"])
            }
        }
    }

    public func devices() async throws -> [Device] {
        try await replica.asyncRead { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT d.node, d.account, a.role, d.public_key, d.enrolled, COALESCE(d.revoked, a.revoked) AS revoked
                    FROM device d JOIN account a ON a.name = d.account ORDER BY d.account, d.enrolled
                    """
            ).compactMap { row in
                NodeID(row["node"]).map {
                    Device(
                        node: $0, account: row["account"], role: Role(rawValue: row["role"]) ?? .documenter, publicKey: row["public_key"],
                        enrolled: row["enrolled"], revoked: row["revoked"])
                }
            }
        }
    }

    public func revokeAccount(_ name: String, now: Int64) async throws -> Bool {
        try await replica.asyncWrite { db in
            try db.execute(sql: "UPDATE account SET revoked = COALESCE(revoked, ?) WHERE name = ?", arguments: [now, name])
            guard db.changesCount > 0 else { return false }
            try db.execute(sql: "UPDATE device SET revoked = COALESCE(revoked, ?) WHERE account = ?", arguments: [now, name])
            return true
        }
    }

    public func revokeDevice(_ node: NodeID, now: Int64) async throws -> Bool {
        try await replica.asyncWrite { db in
            // A device may hold several node ids (after a restore): they share its token and key, and
            // all of them are revoked together.
            guard let token = try String.fetchOne(db, sql: "SELECT token_hash FROM device WHERE node = ?", arguments: [node.rawValue])
            else {
                return false
            }
            try db.execute(sql: "UPDATE device SET revoked = COALESCE(revoked, ?) WHERE token_hash = ?", arguments: [now, token])
            return true
        }
    }

    public func store(
        _ revisions: [Revision], from owners: Set<NodeID>, checked: CheckedSignatures,
        authenticate: @escaping @Sendable (Revision) throws -> Void, admit: @escaping @Sendable (Revision, RecordState?) throws -> Void,
        audit: @escaping @Sendable (StoreOutcome) -> AuditEntry
    ) async throws -> StoreOutcome {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        return try await replica.asyncWrite { db in
            // The caller's key directory was read before this transaction: a revocation committed since
            // must still keep the revoked nodes' new revisions out.
            var found = Set<NodeID>()
            for node in Set(revisions.map(\.dot.node)) {
                let row = try Row.fetchOne(
                    db,
                    sql:
                        "SELECT COALESCE(d.revoked, a.revoked) AS revoked FROM device d JOIN account a ON a.name = d.account WHERE d.node = ?",
                    arguments: [node.rawValue])
                if let row, (row["revoked"] as Int64?) != nil { found.insert(node) }
            }
            let revokedNow = found
            let outcome = StoreOutcome(
                try ReplicaStore.receive(
                    db, revisions, checked: checked, forks: .refuseFrom(owners: owners), now: now, authenticate: authenticate
                ) { revision, current in
                    try admit(revision, current)
                    if revokedNow.contains(revision.dot.node) {
                        throw ProtocolError.revoked(revision)
                    }
                })
            try ReplicaStore.appendAudit(db, audit(outcome))
            return outcome
        }
    }

    public func appendAudit(_ entry: AuditEntry) async throws {
        try await replica.asyncWrite { db in try ReplicaStore.appendAudit(db, entry) }
    }

    public func audit(limit: Int) async throws -> [AuditEntry] {
        try await replica.asyncRead { db in
            try Row.fetchAll(db, sql: "SELECT * FROM (SELECT * FROM audit ORDER BY seq DESC LIMIT ?) ORDER BY seq", arguments: [limit]).map
            { row in
                AuditEntry(
                    seq: row["seq"], time: row["time"], user: row["user"], device: row["device"], action: row["action"],
                    detail: row["detail"], address: row["address"])
            }
        }
    }
}
