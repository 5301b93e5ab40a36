import FieldSyncCore

/// The refusals every central-node backend gives in the same words (SQLite and PostgreSQL alike),
/// so that a client sees one message whichever stores its push.
extension ProtocolError {
    /// A revision of the pushing node contradicts the node's history here (spec 4.5).
    public static func fork(_ revision: Revision, reason: String) -> ProtocolError {
        ProtocolError(
            .fork,
            "revision \(revision.dot) contradicts the history the server holds for node \(revision.dot.node) (\(reason)): this replica was restored from a copy or cloned, and must take a new node id; `fieldsync sync` does so"
        )
    }

    /// A revision whose node was revoked before it arrived.
    public static func revoked(_ revision: Revision) -> ProtocolError {
        ProtocolError(
            .forbidden, "revision \(revision.dot): node \(revision.dot.node) was revoked before the server received this revision")
    }

    /// A device past the number of node ids it may register.
    public static func tooManyNodes(held: Int) -> ProtocolError {
        ProtocolError(
            .forbidden,
            "this device already has \(held) node ids, the most one device may register (\(SyncProtocol.maximumNodesPerDevice)); ask an admin to revoke it and give you a new enrolment code"
        )
    }

    /// Another upload of the same bytes, under another manifest, is under way.
    public static let uploadUnderWay = ProtocolError(
        .uploadConflict, "another upload of these bytes, under another manifest, is under way; try again once it is complete or expired")

    /// An attachment that would take its account past its quota (spec 19.6).
    public static func quotaExceeded(size: Int64, account: String, used: Int64, quota: Int64) -> ProtocolError {
        ProtocolError(
            .quotaExceeded,
            "this attachment (\(size) bytes) would take account \(account) past its quota: \(used) of \(quota) bytes are used; ask an admin"
        )
    }
}
