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
    @Option(name: .customLong("set"), help: ArgumentHelp("PATH=VALUE, PATH+=VALUE or PATH-=VALUE (VALUE is JSON if valid, else text).", valueName: "ASSIGNMENT"))
    var assignments: [String] = []
    @Option(help: ArgumentHelp("Add incidents from a JSON file (an object or an array of objects); - reads stdin.", valueName: "FILE"))
    var from: String?
    @Flag(help: "Print the new records as JSON.") var json = false

    func validate() throws {
        if from != nil, title != nil || occurred != nil || place != nil || governorate != nil || !assignments.isEmpty {
            throw ValidationError("--from cannot be combined with --title, --occurred, --place, --governorate or --set")
        }
        if from == nil, title == nil, !assignments.contains(where: { $0.hasPrefix("title=") }) {
            throw ValidationError("give --title (or --from FILE)")
        }
    }

    func run() async throws {
        let store = try storeOptions.open()
        let documents: [[FieldChange]]
        if let from {
            documents = try Self.readDocuments(from)
        } else {
            var changes: [FieldChange] = []
            if let title { changes.append(.set(path: "title", value: .string(title))) }
            if let occurred { changes.append(.set(path: "occurred.start", value: .string(occurred))) }
            if let place { changes.append(.set(path: "location.place", value: .string(place))) }
            if let governorate { changes.append(.set(path: "location.governorate", value: .string(governorate))) }
            for assignment in assignments { changes.append(try FieldChange.parse(assignment: assignment)) }
            documents = [changes]
        }
        // Validate everything before writing: a bad incident in a file leaves the replica unchanged.
        var operations: [[FieldOperation]] = []
        for (i, changes) in documents.enumerated() {
            do {
                operations.append(try LocalEdit.operations(for: changes, current: nil, newEntryID: Self.newEntryID))
            } catch {
                throw CLIError(documents.count > 1 ? "incident \(i + 1): \(error.description)" : error.description)
            }
        }
        let now = nowMilliseconds()
        let ids = operations.map { _ in RecordID.generate(millisecondsSince1970: now) }
        _ = try store.commitLocal(records: ids, now: now) { index, _ in (.put, operations[index], nil) }
        if json {
            let records = try ids.map { try store.record($0)! }
            let output = records.count == 1 && from == nil ? RecordPresenter.recordJSON(records[0]) : .array(records.map(RecordPresenter.recordJSON))
            print(output.prettyText())
        } else {
            for id in ids { print(id) }
        }
    }

    /// Reads incidents from a JSON file: one object, or an array of objects.
    static func readDocuments(_ path: String) throws -> [[FieldChange]] {
        let data: Data
        if path == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            // A FileHandle also reads pipes and process substitutions, which have no size up front.
            guard let handle = FileHandle(forReadingAtPath: path) else { throw CLIError("cannot read \(path)") }
            data = handle.readDataToEndOfFile()
            try? handle.close()
        }
        let json: JSONValue
        do { json = try JSONValue(parsing: Array(data)) } catch { throw CLIError("\(path): \(error.description)") }
        let items = json.arrayValue ?? [json]
        guard !items.isEmpty else { throw CLIError("\(path): no incidents in the file") }
        var documents: [[FieldChange]] = []
        for (i, item) in items.enumerated() {
            do { documents.append(try IncidentDocument.changes(from: item)) } catch {
                throw CLIError("\(path): incident \(i + 1): \(error.description)")
            }
        }
        return documents
    }

    /// Ids of new collection entries: 12 random hex digits.
    static func newEntryID() -> String {
        String(UInt64.random(in: 0..<(1 << 48)), radix: 16).leftPadded(to: 12)
    }
}

extension String {
    func leftPadded(to width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
