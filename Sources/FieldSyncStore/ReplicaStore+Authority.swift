import FieldSyncCore
import FieldSyncProtocol
import GRDB

extension ReplicaStore {
    /// Who may end conflicts in this store (spec 6.7): on the central node, the node ids of admin
    /// accounts' devices; on an enrolled replica, the nodes its central node's key directory lists as
    /// an admin's, plus its current node id when it is enrolled as an admin (its retired ones only
    /// as the directory lists them: a replica re-enrolled after a promotion must not count its
    /// documenter years as an admin's); on an unenrolled replica, everyone.
    public func resolutionAuthority() throws -> ResolutionAuthority {
        try read { db in try Self.computedAuthority(db) }
    }

    static func computedAuthority(_ db: Database) throws -> ResolutionAuthority {
        if try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM account)") ?? false {
            let nodes = try String.fetchAll(
                db, sql: "SELECT device.node FROM device JOIN account ON account.name = device.account WHERE account.role = 'admin'")
            return .admins(Set(nodes.compactMap(NodeID.init)))
        }
        guard let role = try String.fetchOne(db, sql: "SELECT unseal(role, 'enrolment.role') FROM enrolment WHERE id = 1") else {
            return .everyone
        }
        var nodes = Set(try String.fetchAll(db, sql: "SELECT node FROM node_key WHERE role = 'admin'").compactMap(NodeID.init))
        if role == Role.admin.rawValue { nodes.insert(try Self.identity(db).node) }
        return .admins(nodes)
    }

    /// The authority to apply revisions with in this transaction. When it differs from the one the
    /// stored record states were computed with (a role learned, an enrolment, an older store), the
    /// records whose conflicts it can change are replayed first, so that every state is always the
    /// function of the revisions held and of who may resolve.
    static func authority(_ db: Database, now: Int64) throws -> ResolutionAuthority {
        let authority = try computedAuthority(db)
        let text = Self.text(of: authority)
        let stored = try String.fetchOne(db, sql: "SELECT authority FROM replica WHERE id = 1")
        guard stored != text else { return authority }
        let affected: [RecordID]
        switch (stored.flatMap(Self.authority(text:)), authority) {
        case (.admins(let old)?, .admins(let new)):
            let changed = old.symmetricDifference(new).map(\.rawValue)
            affected =
                changed.isEmpty
                ? []
                : try String.fetchAll(
                    db, sql: "SELECT DISTINCT reveal(record) FROM revision WHERE node IN (\(databaseQuestionMarks(count: changed.count)))",
                    arguments: StatementArguments(changed)
                ).compactMap(RecordID.init)
        default:
            affected = try String.fetchAll(db, sql: "SELECT reveal(id) FROM record").compactMap(RecordID.init)
        }
        var states: [RecordID: RecordState] = [:]
        for id in affected { states[id] = try replayRecord(db, id, authority: authority).state }
        try saveStates(db, states, now: now)
        try db.execute(sql: "UPDATE replica SET authority = ? WHERE id = 1", arguments: [text])
        return authority
    }

    private static func text(of authority: ResolutionAuthority) -> String {
        switch authority {
        case .everyone: "everyone"
        case .admins(let nodes): "admins:" + nodes.map(\.rawValue).sorted().joined(separator: ",")
        }
    }

    private static func authority(text: String) -> ResolutionAuthority? {
        if text == "everyone" { return .everyone }
        guard text.hasPrefix("admins:") else { return nil }
        let list = text.dropFirst("admins:".count).split(separator: ",").map(String.init)
        return .admins(Set(list.compactMap(NodeID.init)))
    }
}
