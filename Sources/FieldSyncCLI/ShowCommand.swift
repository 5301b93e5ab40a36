import ArgumentParser
import FieldSyncCore
import FieldSyncStore

/// `fieldsync show`: one record, its conflicts and, with `--history`, every revision.
struct ShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Show a record; --history adds every revision: who, when, what.",
        discussion: "Examples:\n  fieldsync show 0193a2\n  fieldsync show 0193a2 --history --json")

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "The record id, or any unique prefix of it.") var id: String
    @Flag(help: "Include the record's full history.") var history = false
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let store = try storeOptions.open()
        let recordID = try store.resolveID(id)
        guard let state = try store.record(recordID) else { throw CLIError("no record with id \(id)") }
        let revisions = history ? try HistoryOrder.canonical(try store.history(of: recordID)) : []
        let steps = HistoryStep.replay(revisions.map(\.revision), authority: try store.resolutionAuthority())
        let directory = try store.keyDirectory()
        let ownKey = try store.publicKey()
        let signatures = revisions.map { SignatureStatus(of: $0.revision, in: directory, ownKey: ownKey) }
        if json {
            var object = RecordPresenter.recordJSON(state).objectValue!
            if history {
                object["history"] = .array(revisions.indices.map { RecordPresenter.historyJSON(revisions[$0], steps[$0], signatures[$0]) })
            }
            print(JSONValue.object(object).prettyText())
            return
        }
        print(RecordPresenter.recordText(state), terminator: "")
        if history {
            print("\nhistory (\(revisions.count) revisions):")
            for i in revisions.indices { print(RecordPresenter.historyText(revisions[i], steps[i], signatures[i]), terminator: "") }
        }
    }
}

/// `fieldsync list`: the records of the replica.
struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List records.",
        discussion: "Examples:\n  fieldsync list\n  fieldsync list --conflicted --json")

    @OptionGroup var storeOptions: StoreOptions
    @Flag(help: "Only records with open conflicts.") var conflicted = false
    @Flag(help: "Include deleted records.") var all = false
    @Flag(help: "Print a JSON array of records (the `show --json` shape).") var json = false

    func run() async throws {
        let store = try storeOptions.open()
        let records = try store.records(conflictedOnly: conflicted, includeDeleted: all)
        if json {
            print(JSONValue.array(records.map(RecordPresenter.recordJSON)).prettyText())
            return
        }
        if records.isEmpty {
            print(conflicted ? "no conflicted records" : "no records")
            return
        }
        for state in records {
            let date = RecordPresenter.valueText(state.value(at: "occurred.start") ?? .string("-"))
            let place = TerminalText.visible(state.value(at: "location.place")?.stringValue ?? "-")
            let conflicts = state.conflicts.count
            var flags = ""
            if conflicts > 0 { flags += "  [\(conflicts) conflict\(conflicts == 1 ? "" : "s")]" }
            if state.isDeleted { flags += "  [deleted]" }
            print(
                "\(state.id.short)  \(date.padding(toLength: 12, withPad: " ", startingAt: 0))  \(place.padding(toLength: 18, withPad: " ", startingAt: 0))  \(TerminalText.visible(state.value(at: "title")?.stringValue ?? ""))\(flags)"
            )
        }
    }
}

/// `fieldsync status`: who this replica is and what it holds.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show node id, counts of records, revisions and open conflicts.")

    @OptionGroup var storeOptions: StoreOptions
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let store = try storeOptions.open()
        let status = try store.status()
        if json {
            var o: [String: JSONValue] = [
                "node": .string(status.identity.node.rawValue), "name": .string(status.identity.name), "store": .string(store.path),
                "records": .int(Int64(status.records)), "deleted_records": .int(Int64(status.deletedRecords)),
                "revisions": .int(Int64(status.revisions)), "conflicted_records": .int(Int64(status.conflictedRecords)),
                "conflicts": .int(Int64(status.conflicts)), "knowledge": status.knowledge.json,
                "retired_nodes": .array(status.identity.retiredNodes.map { .string($0.rawValue) }),
                "forked_revisions": .int(Int64(status.forkedRevisions)), "held_revisions": .int(Int64(status.heldRevisions)),
            ]
            o["server"] = status.identity.server.map(JSONValue.string) ?? .null
            o["encryption"] = .string(store.isEncrypted ? "passphrase" : "none")
            print(JSONValue.object(o).prettyText())
            return
        }
        print("replica:    \(store.path)")
        print("node id:    \(status.identity.node)")
        print("name:       \(TerminalText.visible(status.identity.name))")
        print("server:     \(status.identity.server ?? "(none; give sync --server URL)")")
        print("records:    \(status.records)\(status.deletedRecords > 0 ? " (+\(status.deletedRecords) deleted)" : "")")
        print("revisions:  \(status.revisions)")
        print("encryption: \(store.isEncrypted ? "passphrase" : "none")")
        print("conflicts:  \(status.conflicts) open, in \(status.conflictedRecords) record\(status.conflictedRecords == 1 ? "" : "s")")
        if status.forkedRevisions > 0 {
            print(
                "set aside:  \(status.forkedRevisions) revision\(status.forkedRevisions == 1 ? "" : "s") kept as fork evidence (`fieldsync verify` lists them)"
            )
        }
        if status.heldRevisions > 0 {
            print(
                "held:       \(status.heldRevisions) revision\(status.heldRevisions == 1 ? "" : "s") from bundles, until your central node vouches for them (`fieldsync bundle held`)"
            )
        }
    }
}
