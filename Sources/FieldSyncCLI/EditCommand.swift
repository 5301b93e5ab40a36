import ArgumentParser
import FieldSyncCore
import FieldSyncStore

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
        let enrolment = try store.enrolment()
        var changes = try assignments.map { try FieldChange.parse(assignment: $0) }
        for path in unsetPaths {
            _ = try IncidentSchema.kind(of: path)
            changes.append(.unset(path: path))
        }
        _ = try store.commitLocal(record: recordID, now: nowMilliseconds()) { current in
            guard let current else { throw StoreError(.notFound, "no record with id \(id)") }
            // Every edit writes the `deleted` register, so editing would silently settle a delete.
            if current.conflicts.contains(where: { $0.path == "deleted" }) {
                throw CLIError("record \(recordID) was deleted on one replica while edited on another: settle that first with `fieldsync resolve \(recordID.short) --keep` or `--delete`")
            }
            if current.isDeleted { throw CLIError("record \(recordID) is deleted; it cannot be edited") }
            let operations = try LocalEdit.operations(for: changes, current: current, newEntryID: AddCommand.newEntryID)
            // Said before any write: the server refuses a documenter's revision that settles a
            // conflict, and the work would be stranded at sync time.
            if enrolment?.role == .documenter {
                let conflicted = Set(current.conflicts.map(\.path))
                let touched = Set(operations.map(\.path)).intersection(conflicted).sorted()
                if !touched.isEmpty {
                    throw CLIError("\(touched.joined(separator: ", ")) is in conflict; only an admin can settle it (see `fieldsync conflicts`). Your other fields can still be edited.")
                }
            }
            return (.put, operations, nil)
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
        _ = try store.commitLocal(record: recordID, now: nowMilliseconds()) { current in
            guard let current else { throw StoreError(.notFound, "no record with id \(id)") }
            if current.isDeleted { throw CLIError("record \(recordID) is already deleted") }
            // A delete writes the `deleted` register, so it would settle a delete-against-edit conflict.
            if current.conflicts.contains(where: { $0.path == "deleted" }) {
                throw CLIError("record \(recordID) is already in a delete-against-edit conflict: settle it with `fieldsync resolve \(recordID.short) --keep` or `--delete`")
            }
            return (.delete, [], nil)
        }
        print("deleted \(recordID)")
    }
}
