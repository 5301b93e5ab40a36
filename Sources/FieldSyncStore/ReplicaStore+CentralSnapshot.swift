import FieldSyncCore
import FieldSyncProtocol
import GRDB

extension ReplicaStore {
    /// The central node's whole state but attachment bytes, read in one transaction, for
    /// `fieldsync server migrate` (``CentralNodeSnapshot``).
    public func centralNodeSnapshot() throws -> CentralNodeSnapshot {
        try read { db in
            var snapshot = CentralNodeSnapshot(node: try Self.identity(db).node, signingKey: try Self.deviceKey(db))
            snapshot.revisions = try Row.fetchAll(
                db, sql: "SELECT \(Sealed.revisionBody) AS body, \(Sealed.revisionReceived) AS received FROM revision ORDER BY seq"
            ).map { CentralNodeSnapshot.StoredRevision(text: $0["body"], received: $0["received"]) }
            snapshot.setAside = try Row.fetchAll(
                db,
                sql: """
                    SELECT node, counter, reveal(record) AS record, unseal(body, 'forked_revision.body/' || hash) AS body, reason,
                        unseal(detail, 'forked_revision.detail/' || hash) AS detail, stored
                    FROM forked_revision ORDER BY seq
                    """
            ).compactMap { row in
                let body: String = row["body"]
                return NodeID(row["node"]).map {
                    CentralNodeSnapshot.SetAside(
                        node: $0, counter: UInt64(row["counter"] as Int64), record: row["record"], body: body,
                        hash: RevisionChain.hash(ofText: body), reason: row["reason"], detail: row["detail"], stored: row["stored"])
                }
            }
            snapshot.accounts = try Row.fetchAll(db, sql: "SELECT name, role, created, revoked FROM account ORDER BY name").map {
                Account(name: $0["name"], role: Role(rawValue: $0["role"]) ?? .documenter, created: $0["created"], revoked: $0["revoked"])
            }
            snapshot.codes = try Row.fetchAll(db, sql: "SELECT hash, account, created, expires, used FROM enrolment_code").map {
                CentralNodeSnapshot.Code(
                    hash: $0["hash"], account: $0["account"], created: $0["created"], expires: $0["expires"], used: $0["used"])
            }
            snapshot.devices = try Row.fetchAll(
                db, sql: "SELECT node, account, public_key, token_hash, enrolled, revoked, certificate FROM device ORDER BY enrolled, node"
            ).compactMap { row in
                NodeID(row["node"]).map {
                    CentralNodeSnapshot.StoredDevice(
                        node: $0, account: row["account"], publicKey: row["public_key"], tokenHash: row["token_hash"],
                        enrolled: row["enrolled"], revoked: row["revoked"], certificate: row["certificate"])
                }
            }
            snapshot.audit = try Row.fetchAll(db, sql: "SELECT * FROM audit ORDER BY seq").map {
                AuditEntry(
                    seq: $0["seq"], time: $0["time"], user: $0["user"], device: $0["device"], action: $0["action"], detail: $0["detail"],
                    address: $0["address"])
            }
            snapshot.references = try String.fetchAll(
                db, sql: "SELECT unseal(content, 'attachment_reference.content/' || sha || '/' || manifest) FROM attachment_reference"
            ).compactMap { text in
                (try? JSONValue(parsing: text)).flatMap(AttachmentReference.init(json:)).map {
                    CentralNodeSnapshot.Reference(sha256: $0.sha256, content: $0.content)
                }
            }
            for reference in snapshot.references {
                if let manifest = try Self.attachmentManifest(db, hash: reference.content.manifest) {
                    snapshot.manifests[manifest.hash] = manifest.canonicalBytes
                }
            }
            for row in try Row.fetchAll(db, sql: "SELECT sha, account, size FROM attachment_receipt") {
                if let receipt = try Self.attachmentReceipt(db, row["sha"]) {
                    snapshot.receipts.append(
                        CentralNodeSnapshot.StoredReceipt(receipt: receipt, account: row["account"], size: row["size"]))
                }
            }
            return snapshot
        }
    }
}
