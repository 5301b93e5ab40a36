import FieldSyncStore

/// Who this replica is and where it stands: node, server, last sync, what the central node does
/// not hold yet (revisions and attachments), open conflicts and encryption.
enum StatusPage {
    static func render(store: ReplicaStore, session: (id: String, csrf: String)?) throws -> HTML {
        let status = try store.status()
        let enrolment = try store.enrolment()
        let lastSync = try store.lastSync().map(ConsolePage.time) ?? "never"
        let unsynced = try store.unsyncedRevisions()
        let withoutReceipt = try store.localAttachments().filter { (try? store.attachmentReceipt($0.sha256)) == nil }.count
        let server = status.identity.server ?? enrolment?.server ?? "none (this replica syncs by bundles only)"
        let role: HTML = enrolment.map { "<dt>Enrolled as</dt><dd dir=\"auto\">\($0.user) (\($0.role.rawValue))</dd>" } ?? ""
        let body: HTML = """
            <h1>Status</h1>
            <dl class="facts">
            <dt>Replica</dt><dd>\(store.path)</dd>
            <dt>Node id</dt><dd><code>\(status.identity.node.rawValue)</code></dd>
            <dt>Name</dt><dd dir="auto">\(status.identity.name)</dd>
            <dt>Central node</dt><dd>\(server)</dd>\(role)
            <dt>Last sync</dt><dd>\(lastSync)</dd>
            <dt>Revisions not yet on the central node</dt><dd>\(unsynced)</dd>
            <dt>Attachments without a receipt</dt><dd>\(withoutReceipt)</dd>
            <dt>Records</dt><dd>\(status.records)\(status.deletedRecords > 0 ? HTML(" (+\(status.deletedRecords) deleted)") : "")</dd>
            <dt>Revisions</dt><dd>\(status.revisions)</dd>
            <dt>Open conflicts</dt><dd>\(status.conflicts) in \(status.conflictedRecords) record\(status.conflictedRecords == 1 ? "" : "s")</dd>
            <dt>Encryption at rest</dt><dd>\(store.isEncrypted ? "passphrase (encrypted)" : "none: this replica is not encrypted")</dd>
            </dl>
            """
        return ConsolePage.render(title: "Status", current: "/status", session: session, body: body)
    }
}
