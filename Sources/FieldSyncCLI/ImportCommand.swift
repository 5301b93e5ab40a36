import ArgumentParser
import FieldSyncCore
import FieldSyncStore
import Foundation

/// `fieldsync import`: incidents in bulk from CSV (the columns `export --format csv` writes) or JSON.
struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Add incidents in bulk from a CSV or JSON file.",
        discussion: """
            CSV needs a header row with column names as `export --format csv` writes them (title is \
            required; violations and tags hold "; "-separated values; id, victims, perpetrators, sources \
            and conflicts are ignored). A bad row is reported with its line number and nothing is \
            imported, unless --skip-invalid imports the good rows and reports the others.

            Examples:
              fieldsync import incidents.csv
              fieldsync import incidents.csv --skip-invalid --json
              fieldsync import incidents.json
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "A .csv file, or a .json file with an incident or an array of incidents.") var file: String
    @Flag(help: "Import the valid rows and report the invalid ones, instead of importing nothing.") var skipInvalid = false
    @Flag(help: "Print the report as JSON.") var json = false
    @Flag(help: "CSV only: the file was written with `export --raw`; take every cell as it is.") var raw = false

    func validate() throws {
        if raw && !file.lowercased().hasSuffix(".csv") { throw ValidationError("--raw goes with a .csv file") }
    }

    func run() async throws {
        let store = try storeOptions.open()
        let candidates: [BulkIncidents.Candidate]
        if file.lowercased().hasSuffix(".csv") {
            candidates = try BulkIncidents.fromCSV(try BulkIncidents.readText(file), file: file, raw: raw)
        } else {
            candidates = try BulkIncidents.fromJSON(try BulkIncidents.readText(file), file: file)
        }
        let (ids, skipped) = try BulkIncidents.commit(candidates, into: store, skipInvalid: skipInvalid, file: file)
        if json {
            print(
                JSONValue.object([
                    "imported": .int(Int64(ids.count)), "ids": .array(ids.map { .string($0.rawValue) }),
                    "skipped": .array(skipped.map { ["location": .string($0.location), "reason": .string($0.reason)] }),
                ]).prettyText())
        } else {
            print("imported \(ids.count) incident\(ids.count == 1 ? "" : "s")\(skipped.isEmpty ? "" : ", skipped \(skipped.count):")")
            for s in skipped { print("  \(s.location): \(TerminalText.visible(s.reason))") }
        }
    }
}

/// Bulk loading shared by `import` and `add --from`: parse, validate every incident, then write the
/// valid ones in one transaction (or nothing, when any is invalid and --skip-invalid is not given).
enum BulkIncidents {
    /// One incident from a file: where it is (a CSV line or a JSON position) and its changes or what is wrong.
    struct Candidate {
        var location: String
        var changes: Result<[FieldChange], FieldSyncCore.ValidationError>
    }

    static func readText(_ path: String) throws -> String {
        let data: Data
        if path == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            // A FileHandle also reads pipes and process substitutions, which have no size up front.
            guard let handle = FileHandle(forReadingAtPath: path) else { throw CLIError("cannot read \(path)") }
            data = handle.readDataToEndOfFile()
            try? handle.close()
        }
        guard let text = String(data: data, encoding: .utf8) else { throw CLIError("\(path) is not UTF-8 text") }
        return text
    }

    static func fromCSV(_ text: String, file: String, raw: Bool = false) throws -> [Candidate] {
        let records: [CSV.Record]
        do { records = try CSV.parse(text) } catch { throw CLIError("\(file): \(error.description)") }
        guard let header = records.first else { throw CLIError("\(file): empty file; expected a header row") }
        let columns = header.fields.map { $0.trimmingCharacters(in: .whitespaces) }
        let known = Set(IncidentColumns.scalars.map(\.column) + IncidentColumns.sets.map(\.column) + IncidentColumns.summaries)
        if let unknown = columns.first(where: { !known.contains($0) }) {
            throw CLIError(
                "\(file): line \(header.line): unknown column \"\(unknown)\"; columns are those `fieldsync export --format csv` writes")
        }
        guard columns.contains("title") else { throw CLIError("\(file): line \(header.line): a title column is required") }
        guard records.count > 1 else { throw CLIError("\(file): no incidents after the header") }
        return records.dropFirst().map { record in
            Candidate(
                location: "line \(record.line)",
                changes: Result { () throws(FieldSyncCore.ValidationError) in
                    try IncidentColumns.changes(header: columns, fields: raw ? record.fields : record.fields.map(CSV.unguardFormula))
                })
        }
    }

    static func fromJSON(_ text: String, file: String) throws -> [Candidate] {
        let json: JSONValue
        do { json = try JSONValue(parsing: text) } catch { throw CLIError("\(file): \(error.description)") }
        let items = json.arrayValue ?? [json]
        guard !items.isEmpty else { throw CLIError("\(file): no incidents in the file") }
        return items.enumerated().map { i, item in
            Candidate(
                location: "incident \(i + 1)",
                changes: Result { () throws(FieldSyncCore.ValidationError) in try IncidentDocument.changes(from: item) })
        }
    }

    /// Returns the new record ids and the skipped incidents.
    static func commit(
        _ candidates: [Candidate], into store: ReplicaStore, skipInvalid: Bool, file: String
    ) throws -> (ids: [RecordID], skipped: [(location: String, reason: String)]) {
        var valid: [[FieldOperation]] = []
        var skipped: [(location: String, reason: String)] = []
        for candidate in candidates {
            do {
                let changes = try candidate.changes.get()
                valid.append(try LocalEdit.operations(for: changes, current: nil, newEntryID: AddCommand.newEntryID))
            } catch {
                if !skipInvalid {
                    throw CLIError(
                        "\(file): \(candidate.location): \(error.description); nothing was imported (--skip-invalid imports the valid ones)"
                    )
                }
                skipped.append((candidate.location, error.description))
            }
        }
        let now = nowMilliseconds()
        let ids = valid.map { _ in RecordID.generate(millisecondsSince1970: now) }
        if !ids.isEmpty {
            _ = try store.commitLocal(records: ids, now: now) { index, _ in (.put, valid[index], nil) }
        }
        return (ids, skipped)
    }
}
