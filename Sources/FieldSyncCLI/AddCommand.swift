import ArgumentParser
import FieldSyncCore
import FieldSyncStore
import Foundation

/// `fieldsync add`: records new incidents.
struct AddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Record an incident and print its id.",
        discussion: """
            Examples:
              fieldsync add --title "Executions near the bakery" --occurred 2025-03-07~ --place "Al-Mukhtariya" \\
                --governorate Latakia --set casualties.killed=12 --set violations+=summary-execution
              fieldsync add --set 'victims+={"pseudonym":"V-03","sex":"male","age_range":"30-40","status":"killed"}' --title "..."
              fieldsync add --from incidents.json      # one JSON object or an array of them; - reads stdin
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Option(help: "The incident's title.") var title: String?
    @Option(help: "When it happened, as an EDTF date: 2025-03-07, 2025-03, 2025-03-07~, 2025-03-06/2025-03-08.") var occurred: String?
    @Option(help: "The place (village, neighbourhood).") var place: String?
    @Option(help: "The governorate.") var governorate: String?
    @Option(
        name: .customLong("set"),
        help: ArgumentHelp("PATH=VALUE, PATH+=VALUE or PATH-=VALUE (VALUE is JSON if valid, else text).", valueName: "ASSIGNMENT"))
    var assignments: [String] = []
    @Option(help: ArgumentHelp("Add incidents from a JSON file (an object or an array of objects); - reads stdin.", valueName: "FILE"))
    var from: String?
    @Flag(help: "With --from: add the valid incidents and report the invalid ones, instead of adding nothing.") var skipInvalid = false
    @Flag(help: "Print the new records as JSON.") var json = false

    func validate() throws {
        if from != nil, title != nil || occurred != nil || place != nil || governorate != nil || !assignments.isEmpty {
            throw ValidationError("--from cannot be combined with --title, --occurred, --place, --governorate or --set")
        }
        if skipInvalid, from == nil { throw ValidationError("--skip-invalid goes with --from") }
        if from == nil, title == nil, !assignments.contains(where: { $0.hasPrefix("title=") }) {
            throw ValidationError("give --title (or --from FILE)")
        }
    }

    func run() async throws {
        let store = try storeOptions.open()
        let ids: [RecordID]
        if let from {
            let candidates = try BulkIncidents.fromJSON(try BulkIncidents.readText(from), file: from)
            let result = try BulkIncidents.commit(candidates, into: store, skipInvalid: skipInvalid, file: from)
            ids = result.ids
            for s in result.skipped {
                FileHandle.standardError.write(Data("fieldsync: skipped \(s.location): \(TerminalText.visible(s.reason))\n".utf8))
            }
        } else {
            var changes: [FieldChange] = []
            if let title { changes.append(.set(path: "title", value: .string(title))) }
            if let occurred { changes.append(.set(path: "occurred.start", value: .string(occurred))) }
            if let place { changes.append(.set(path: "location.place", value: .string(place))) }
            if let governorate { changes.append(.set(path: "location.governorate", value: .string(governorate))) }
            for assignment in assignments { changes.append(try FieldChange.parse(assignment: assignment)) }
            let operations = try LocalEdit.operations(for: changes, current: nil, newEntryID: Self.newEntryID)
            let now = nowMilliseconds()
            let id = RecordID.generate(millisecondsSince1970: now)
            _ = try store.commitLocal(record: id, now: now) { _ in (.put, operations, nil) }
            ids = [id]
        }
        if json {
            let records = try ids.map { try store.record($0)! }
            let output =
                records.count == 1 && from == nil ? RecordPresenter.recordJSON(records[0]) : .array(records.map(RecordPresenter.recordJSON))
            print(output.prettyText())
        } else {
            for id in ids { print(id) }
        }
    }

    /// Ids of new collection entries: 12 random hex digits.
    static func newEntryID() -> String {
        String(UInt64.random(in: 0..<(1 << 48)), radix: 16).leftPadded(to: 12)
    }
}

extension String {
    func leftPadded(to width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
