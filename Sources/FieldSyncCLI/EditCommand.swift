import ArgumentParser
import FieldSyncCore
import FieldSyncStore
import Foundation

/// `fieldsync edit`: changes fields of a record.
struct EditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edit", abstract: "Change fields of a record.",
        discussion: """
            Examples:
              fieldsync edit 0193a2 --set casualties.killed=14 --set tags+=verified-by-hospital
              fieldsync edit 0193a2 --set victims.3f2a9c1b0d4e.status=killed --unset narrative
              fieldsync edit 0193a2 --set victims-=3f2a9c1b0d4e
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "The record id, or any unique prefix of it.") var id: String
    @Option(name: .customLong("set"), help: ArgumentHelp("PATH=VALUE, PATH+=VALUE or PATH-=VALUE.", valueName: "ASSIGNMENT"))
    var assignments: [String] = []
    @Option(name: .customLong("unset"), help: ArgumentHelp("Clear a field.", valueName: "PATH")) var unsetPaths: [String] = []
    @Flag(help: "Print the record as JSON afterwards.") var json = false

    func validate() throws {
        if assignments.isEmpty && unsetPaths.isEmpty { throw ValidationError("nothing to change: give --set PATH=VALUE or --unset PATH") }
    }

    func run() async throws {
        let store = try storeOptions.open()
        let recordID = try store.resolveID(id)
        var changes = try assignments.map { try FieldChange.parse(assignment: $0) }
        for path in unsetPaths.map(\.nfc) {
            _ = try IncidentSchema.kind(of: path)
            changes.append(.unset(path: path))
        }
        let candidatePaths = try RecordEdit(changes: changes).commit(
            to: store, record: recordID, now: nowMilliseconds(), newEntryID: AddCommand.newEntryID
        ).candidatePaths
        for path in candidatePaths {
            let what =
                path == "deleted"
                ? "record \(recordID.short) is in a delete-against-edit conflict: your edit"
                : "\(TerminalText.visible(path)) of \(recordID.short) is in conflict: your value"
            FileHandle.standardError.write(
                Data("note: \(what) is kept as one more candidate until an admin resolves it (see `fieldsync conflicts`)\n".utf8))
        }
        if json { print(RecordPresenter.recordJSON(try store.record(recordID)!).prettyText()) } else { print(recordID) }
    }
}

/// `fieldsync delete`: marks a record deleted. Its history stays; a concurrent edit makes it a conflict.
struct DeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a record (its history is kept).",
        discussion: "Example:\n  fieldsync delete 0193a2")

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "The record id, or any unique prefix of it.") var id: String

    func run() async throws {
        let store = try storeOptions.open()
        let recordID = try store.resolveID(id)
        let resolves = try store.resolutionAuthority().mayResolve(try store.identity().node)
        var candidate = false
        _ = try store.commitLocal(record: recordID, now: nowMilliseconds()) { current in
            guard let current else { throw StoreError(.notFound, "no record with id \(id)") }
            if current.isDeleted { throw CLIError("record \(recordID) is already deleted") }
            candidate = current.isConflicted(at: "deleted")
            // A delete writes the `deleted` register, so one that may resolve would settle a delete-against-edit conflict.
            if resolves, candidate {
                throw CLIError(
                    "record \(recordID) is already in a delete-against-edit conflict: settle it with `fieldsync resolve \(recordID.short) --keep` or `--delete`"
                )
            }
            return (.delete, [], nil)
        }
        print("deleted \(recordID)")
        if candidate {
            FileHandle.standardError.write(
                Data(
                    "note: record \(recordID.short) is in a delete-against-edit conflict: your delete is kept as one more candidate until an admin resolves it\n"
                        .utf8))
        }
    }
}
