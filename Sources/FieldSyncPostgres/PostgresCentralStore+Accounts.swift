import FieldSyncCore
import FieldSyncProtocol
import Foundation
import PostgresNIO

/// Accounts, devices, codes, certificates, the audit log and the enrolment rate limit, all in the
/// shared database: every instance sees the same ones (spec 15).
extension PostgresCentralStore: AccountStorage {
    public func addAccount(name: String, role: Role, codeHash: String, expires: Int64, now: Int64) async throws {
        try await write { connection in
            try await Self.addAccount(connection, name: name, role: role, codeHash: codeHash, expires: expires, now: now, logger: logger)
        }
    }

    /// `fieldsync server add-user --database`: the account and code, audited as done on the server machine.
    public func addAccountAudited(name: String, role: Role, codeHash: String, expires: Int64, now: Int64) async throws {
        try await write { connection in
            try await Self.addAccount(connection, name: name, role: role, codeHash: codeHash, expires: expires, now: now, logger: logger)
            try await Self.appendAudit(
                connection,
                AuditEntry(
                    time: now, user: nil, device: nil, action: "add-user",
                    detail: "issued an enrolment code for \(name) (\(role.rawValue)) on the server machine", address: nil), logger: logger)
        }
    }

    static func addAccount(
        _ connection: PostgresConnection, name: String, role: Role, codeHash: String, expires: Int64, now: Int64, logger: Logger
    ) async throws {
        var existing: (String, Int64?)?
        for try await row in try await connection.query("SELECT role, revoked FROM account WHERE name = \(name)", logger: logger)
            .decode((String, Int64?).self)
        {
            existing = row
        }
        if let (existingRole, revoked) = existing {
            guard revoked == nil else { throw ProtocolError(.conflictingDuplicate, "account \(name) was revoked; choose another name") }
            guard existingRole == role.rawValue else {
                throw ProtocolError(.conflictingDuplicate, "account \(name) exists with role \(existingRole)")
            }
        } else {
            try await connection.query(
                "INSERT INTO account (name, role, created) VALUES (\(name), \(role.rawValue), \(now))", logger: logger)
        }
        try await connection.query(
            "INSERT INTO enrolment_code (hash, account, created, expires) VALUES (\(codeHash), \(name), \(now), \(expires))", logger: logger
        )
    }

    static func appendAudit(_ connection: PostgresConnection, _ entry: AuditEntry, logger: Logger) async throws {
        try await connection.query(
            """
            INSERT INTO audit (time, "user", device, action, detail, address)
            VALUES (\(entry.time), \(entry.user), \(entry.device), \(entry.action), \(entry.detail), \(entry.address))
            """, logger: logger)
    }

    public func redeem(codeHash: String, node: NodeID, publicKey: String, tokenHash: String, repeatable: Bool, now: Int64) async throws
        -> Principal
    {
        let key = self.key
        return try await write { connection in
            var code: (account: String, expires: Int64, used: Int64?, role: String, revoked: Int64?)?
            for try await row in try await connection.query(
                """
                SELECT c.account, c.expires, c.used, a.role, a.revoked FROM enrolment_code c JOIN account a ON a.name = c.account
                WHERE c.hash = \(codeHash)
                """, logger: logger
            ).decode((String, Int64, Int64?, String, Int64?).self) {
                code = row
            }
            guard let code, let role = Role(rawValue: code.role) else {
                throw ProtocolError(.unauthorized, "the enrolment code is not valid")
            }
            if let used = code.used {
                // The same device asking again because the answer to its enrolment was lost.
                var device: (String, String, String, Int64, Int64?)?
                if repeatable, code.expires > now, code.revoked == nil {
                    for try await row in try await connection.query(
                        "SELECT account, public_key, token_hash, enrolled, revoked FROM device WHERE node = \(node.rawValue)",
                        logger: logger
                    ).decode((String, String, String, Int64, Int64?).self) {
                        device = row
                    }
                }
                guard let device, device.0 == code.account, device.1 == publicKey, device.3 == used, device.4 == nil else {
                    throw ProtocolError(.unauthorized, "the enrolment code was already used")
                }
                try await connection.query("UPDATE device SET token_hash = \(tokenHash) WHERE token_hash = \(device.2)", logger: logger)
                return Principal(account: code.account, role: role, node: node, publicKey: publicKey)
            }
            guard code.expires > now else {
                throw ProtocolError(.unauthorized, "the enrolment code has expired; ask an admin for a new one")
            }
            guard code.revoked == nil else { throw ProtocolError(.unauthorized, "the account was revoked") }
            guard try await !Self.exists(connection, "SELECT EXISTS (SELECT 1 FROM device WHERE node = \(node.rawValue))", logger: logger)
            else { throw ProtocolError(.conflictingDuplicate, "node \(node) is already enrolled") }
            try await connection.query("UPDATE enrolment_code SET used = \(now) WHERE hash = \(codeHash)", logger: logger)
            let certificate = try NodeCertificate.issue(
                node: node, publicKey: publicKey, user: code.account, role: role, issued: now, by: key)
            try await connection.query(
                """
                INSERT INTO device (node, account, public_key, token_hash, enrolled, certificate)
                VALUES (\(node.rawValue), \(code.account), \(publicKey), \(tokenHash), \(now), \(certificate.json.canonicalText))
                """, logger: logger)
            return Principal(account: code.account, role: role, node: node, publicKey: publicKey)
        }
    }

    static func exists(_ connection: PostgresConnection, _ query: PostgresQuery, logger: Logger) async throws -> Bool {
        for try await value in try await connection.query(query, logger: logger).decode(Bool.self) { return value }
        return false
    }

    public func principal(tokenHash: String) async throws -> Principal? {
        try await read { connection in
            for try await (node, account, publicKey, role) in try await connection.query(
                """
                SELECT d.node, d.account, d.public_key, a.role FROM device d JOIN account a ON a.name = d.account
                WHERE d.token_hash = \(tokenHash) AND d.revoked IS NULL AND a.revoked IS NULL ORDER BY d.enrolled LIMIT 1
                """, logger: logger
            ).decode((String, String, String, String).self) {
                guard let node = NodeID(node), let role = Role(rawValue: role) else { return nil }
                return Principal(account: account, role: role, node: node, publicKey: publicKey)
            }
            return nil
        }
    }

    public func registerNode(_ node: NodeID, for principal: Principal, tokenHash: String, now: Int64) async throws {
        let key = self.key
        try await write { connection in
            for try await owner in try await connection.query("SELECT token_hash FROM device WHERE node = \(node.rawValue)", logger: logger)
                .decode(String.self)
            {
                guard owner == tokenHash else { throw ProtocolError(.conflictingDuplicate, "node \(node) belongs to another device") }
                return
            }
            var held = 0
            for try await count in try await connection.query(
                "SELECT COUNT(*)::integer FROM device WHERE token_hash = \(tokenHash)", logger: logger
            ).decode(Int.self) {
                held = count
            }
            guard held < SyncProtocol.maximumNodesPerDevice else {
                throw ProtocolError.tooManyNodes(held: held)
            }
            let certificate = try NodeCertificate.issue(
                node: node, publicKey: principal.publicKey, user: principal.account, role: principal.role, issued: now, by: key)
            try await connection.query(
                """
                INSERT INTO device (node, account, public_key, token_hash, enrolled, certificate)
                VALUES (\(node.rawValue), \(principal.account), \(principal.publicKey), \(tokenHash), \(now), \(certificate.json.canonicalText))
                """, logger: logger)
        }
    }

    public func certificates(of nodes: Set<NodeID>) async throws -> [NodeCertificate] {
        guard !nodes.isEmpty else { return [] }
        return try await read { connection in
            var certificates: [NodeCertificate] = []
            for try await text in try await connection.query(
                """
                SELECT certificate FROM device WHERE certificate IS NOT NULL AND node = ANY(\(nodes.map(\.rawValue))::text[])
                ORDER BY node COLLATE "C"
                """, logger: logger
            ).decode(String.self) {
                if let certificate = try? NodeCertificate(json: JSONValue(parsing: text), at: "certificate") {
                    certificates.append(certificate)
                }
            }
            return certificates
        }
    }

    public func enrolmentFailures(from address: String, since: Int64) async throws -> Int {
        try await read { connection in
            for try await count in try await connection.query(
                "SELECT COUNT(*)::integer FROM enrolment_failure WHERE address = \(address) AND time >= \(since)", logger: logger
            ).decode(Int.self) {
                return count
            }
            return 0
        }
    }

    public func recordEnrolmentFailure(from address: String, at time: Int64, forgetBefore: Int64, cap: Int) async throws {
        try await write { connection in
            try await connection.query("DELETE FROM enrolment_failure WHERE time < \(forgetBefore)", logger: logger)
            try await connection.query("INSERT INTO enrolment_failure (address, time) VALUES (\(address), \(time))", logger: logger)
            var addresses = 0
            for try await count in try await connection.query(
                "SELECT COUNT(DISTINCT address)::integer FROM enrolment_failure", logger: logger
            ).decode(Int.self) {
                addresses = count
            }
            if addresses > cap {
                try await connection.query(
                    """
                    DELETE FROM enrolment_failure WHERE address IN (
                        SELECT address FROM enrolment_failure GROUP BY address ORDER BY MAX(time) LIMIT \(addresses - cap))
                    """, logger: logger)
            }
        }
    }

    public func serverKey() async throws -> String { key.publicKeyBase64 }

    public func keyDirectory() async throws -> KeyDirectory {
        KeyDirectory(try await keyEntries(withCertificates: false))
    }

    public func certifiedKeyDirectory() async throws -> KeyDirectory {
        KeyDirectory(try await keyEntries(withCertificates: true), serverKey: key.publicKeyBase64)
    }

    func keyEntries(withCertificates: Bool) async throws -> [KeyEntry] {
        try await read { connection in
            var entries: [KeyEntry] = []
            for try await (node, publicKey, account, role, revoked, certificate) in try await connection.query(
                """
                SELECT d.node, d.public_key, d.account, a.role, COALESCE(d.revoked, a.revoked), d.certificate
                FROM device d JOIN account a ON a.name = d.account
                """, logger: logger
            ).decode((String, String, String, String, Int64?, String?).self) {
                guard let node = NodeID(node) else { continue }
                let parsed =
                    withCertificates
                    ? certificate.flatMap { try? NodeCertificate(json: JSONValue(parsing: $0), at: "certificate") } : nil
                entries.append(
                    KeyEntry(
                        node: node, publicKey: publicKey, user: account, role: Role(rawValue: role), revoked: revoked, certificate: parsed))
            }
            return entries
        }
    }

    /// One row's read: triggers raise `directory_version` with every change to a device or an
    /// account, and the first open moved it on by a random amount (a database restored from a dump
    /// must not repeat tags it handed out with other contents).
    public func keyDirectoryTag() async throws -> String {
        try await read { connection in
            var version: Int64 = 0
            for try await value in try await connection.query("SELECT directory_version FROM central WHERE id = 1", logger: logger)
                .decode(Int64.self)
            {
                version = value
            }
            let fingerprint = CentralNodeKey.fingerprint(ofPublicKey: key.publicKeyBase64)
            return "\"" + fingerprint.dropFirst("sha256:".count).prefix(16) + "-\(version)\""
        }
    }

    /// Moves the directory version on by a random amount, as the SQLite node does at each start:
    /// a database restored from a dump could otherwise count up through tags it already used.
    public func startDirectoryEpoch() async throws {
        try await write { connection in
            try await connection.query(
                "UPDATE central SET directory_version = directory_version + \(Int64.random(in: 1...(1 << 40))) WHERE id = 1", logger: logger
            )
        }
    }

    public func accounts() async throws -> [Account] {
        try await read { connection in
            var accounts: [Account] = []
            for try await (name, role, created, revoked, devices) in try await connection.query(
                """
                SELECT a.name, a.role, a.created, a.revoked, (SELECT COUNT(*)::integer FROM device d WHERE d.account = a.name)
                FROM account a ORDER BY a.name COLLATE "C"
                """, logger: logger
            ).decode((String, String, Int64, Int64?, Int).self) {
                accounts.append(
                    Account(name: name, role: Role(rawValue: role) ?? .documenter, created: created, revoked: revoked, devices: devices))
            }
            return accounts
        }
    }

    public func devices() async throws -> [Device] {
        try await read { connection in
            var devices: [Device] = []
            for try await (node, account, role, publicKey, enrolled, revoked) in try await connection.query(
                """
                SELECT d.node, d.account, a.role, d.public_key, d.enrolled, COALESCE(d.revoked, a.revoked)
                FROM device d JOIN account a ON a.name = d.account ORDER BY d.account COLLATE "C", d.enrolled
                """, logger: logger
            ).decode((String, String, String, String, Int64, Int64?).self) {
                guard let node = NodeID(node) else { continue }
                devices.append(
                    Device(
                        node: node, account: account, role: Role(rawValue: role) ?? .documenter, publicKey: publicKey, enrolled: enrolled,
                        revoked: revoked))
            }
            return devices
        }
    }

    public func revokeAccount(_ name: String, now: Int64) async throws -> Bool {
        try await write { connection in
            guard try await Self.exists(connection, "SELECT EXISTS (SELECT 1 FROM account WHERE name = \(name))", logger: logger) else {
                return false
            }
            try await connection.query("UPDATE account SET revoked = COALESCE(revoked, \(now)) WHERE name = \(name)", logger: logger)
            try await connection.query("UPDATE device SET revoked = COALESCE(revoked, \(now)) WHERE account = \(name)", logger: logger)
            return true
        }
    }

    public func revokeDevice(_ node: NodeID, now: Int64) async throws -> Bool {
        try await write { connection in
            var token: String?
            for try await value in try await connection.query("SELECT token_hash FROM device WHERE node = \(node.rawValue)", logger: logger)
                .decode(String.self)
            {
                token = value
            }
            guard let token else { return false }
            try await connection.query("UPDATE device SET revoked = COALESCE(revoked, \(now)) WHERE token_hash = \(token)", logger: logger)
            return true
        }
    }

    public func appendAudit(_ entry: AuditEntry) async throws {
        try await unlockedWrite { connection in try await Self.appendAudit(connection, entry, logger: logger) }
    }

    public func store(
        _ revisions: [Revision], from owners: Set<NodeID>, checked: CheckedSignatures,
        authenticate: @escaping @Sendable (Revision) throws -> Void, admit: @escaping @Sendable (Revision, RecordState?) throws -> Void,
        audit: @escaping @Sendable (StoreOutcome) -> AuditEntry
    ) async throws -> StoreOutcome {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        return try await write { connection in
            // The caller's key directory was read before this transaction: a revocation committed
            // since must still keep the revoked nodes' new revisions out.
            var revoked = Set<NodeID>()
            let authors = Array(Set(revisions.map(\.dot.node.rawValue)))
            for try await node in try await connection.query(
                """
                SELECT d.node FROM device d JOIN account a ON a.name = d.account
                WHERE d.node = ANY(\(authors)::text[]) AND COALESCE(d.revoked, a.revoked) IS NOT NULL
                """, logger: logger
            ).decode(String.self) {
                if let node = NodeID(node) { revoked.insert(node) }
            }
            let revokedNow = revoked
            let outcome = try await PostgresReceive(connection: connection, logger: logger, now: now).receive(
                revisions, owners: owners, checked: checked, authenticate: authenticate
            ) { revision, current in
                try admit(revision, current)
                if revokedNow.contains(revision.dot.node) {
                    throw ProtocolError.revoked(revision)
                }
            }
            try await Self.appendAudit(connection, audit(outcome), logger: logger)
            return outcome
        }
    }

    public func audit(limit: Int) async throws -> [AuditEntry] {
        try await read { connection in
            var entries: [AuditEntry] = []
            for try await (seq, time, user, device, action, detail, address) in try await connection.query(
                """
                SELECT seq, time, "user", device, action, detail, address FROM
                    (SELECT * FROM audit ORDER BY seq DESC LIMIT \(limit)) newest ORDER BY seq
                """, logger: logger
            ).decode((Int64, Int64, String?, String?, String, String, String?).self) {
                entries.append(
                    AuditEntry(seq: seq, time: time, user: user, device: device, action: action, detail: detail, address: address))
            }
            return entries
        }
    }
}
