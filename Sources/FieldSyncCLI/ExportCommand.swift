import ArgumentParser
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore
import Foundation

/// `fieldsync export`: the replica's incidents in the formats analysts use. Output is deterministic:
/// two identical replicas export identical files.
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Export incidents as JSON (full fidelity), CSV (spreadsheets) or GeoJSON (maps).",
        discussion: """
            JSON keeps conflicts, deleted records and, with --include-history, every revision. CSV has one \
            row per incident; a conflicted field reads `CONFLICT: a | b`. GeoJSON holds the incidents \
            that have coordinates.

            The file is plaintext, on purpose: it is for analysts, and it is not encrypted even when the \
            replica is. Write it only where it may be read (an encrypted disk at HQ), never on a laptop \
            that crosses a checkpoint. To carry revisions between replicas, use `fieldsync bundle export`.

            Examples:
              fieldsync export --format csv --out incidents.csv
              fieldsync export --format geojson --out incidents.geojson
              fieldsync export --format json --include-history --out archive.json
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case json, csv, geojson }

    @OptionGroup var storeOptions: StoreOptions
    @Option(help: "json, csv or geojson.") var format: Format
    @Option(help: "Write to this file instead of standard output.") var out: String?
    @Flag(help: "JSON only: include every revision of every record.") var includeHistory = false
    @Flag(
        help:
            "CSV only: write exact values; by default a cell that a spreadsheet would run as a formula (=, +, -, @, tab, CR) gets a leading '."
    )
    var raw = false

    func validate() throws {
        if includeHistory && format != .json { throw ValidationError("--include-history goes with --format json") }
        if raw && format != .csv { throw ValidationError("--raw goes with --format csv") }
    }

    func run() async throws {
        let store = try storeOptions.open()
        let text: String
        switch format {
        case .json:
            let records = try store.records(includeDeleted: true)
            let directory = includeHistory ? try store.keyDirectory() : KeyDirectory()
            let items = try records.map { state -> JSONValue in
                var object = RecordPresenter.recordJSON(state).objectValue!
                if includeHistory {
                    object["history"] = .array(try Self.history(store, state.id, directory))
                }
                return .object(object)
            }
            text = JSONValue.object(["format": "fieldsync-export", "version": 1, "records": .array(items)]).prettyText() + "\n"
        case .csv:
            // A hostile insider can write `=HYPERLINK(...)` into a narrative: analysts open exports in
            // spreadsheets. `import` removes the guard again (and `import --raw` reads --raw files).
            var rows = [CSV.row(IncidentColumns.header)]
            for state in try store.records() {
                let cells = IncidentColumns.row(state)
                rows.append(CSV.row(raw ? cells : cells.map { CSV.guardFormula($0) }))
            }
            text = rows.joined()
        case .geojson:
            let features = try store.records().compactMap(Self.feature)
            text = JSONValue.object(["type": "FeatureCollection", "features": .array(features)]).prettyText() + "\n"
        }
        if let out {
            try BundleExportCommand.writeAtomically(Array(text.utf8), to: out)
        } else {
            print(text, terminator: "")
        }
    }

    /// A record's revisions in an order every replica reproduces, without replica-local details.
    static func history(_ store: ReplicaStore, _ id: RecordID, _ directory: KeyDirectory) throws -> [JSONValue] {
        let revisions = HistoryOrder.canonical(try store.history(of: id))
        let steps = HistoryStep.replay(revisions.map(\.revision), authority: try store.resolutionAuthority())
        // An export says `verified` only of keys the central node certified, this replica's own
        // included, so that identical replicas export alike.
        let ownKey = ""
        return zip(revisions, steps).map { stored, step in
            var object = RecordPresenter.historyJSON(stored, step, SignatureStatus(of: stored.revision, in: directory, ownKey: ownKey))
                .objectValue!
            // Both depend on this replica (when it received the revision, and which names it
            // learned for keys), not on the revision: left out so identical replicas export alike.
            object["received"] = nil
            object["signed_by"] = nil
            return .object(object)
        }
    }

    static func feature(_ state: RecordState) -> JSONValue? {
        guard let lat = state.value(at: "location.lat")?.numberValue, let lon = state.value(at: "location.lon")?.numberValue else {
            return nil
        }
        var properties: [String: JSONValue] = ["id": .string(state.id.rawValue)]
        for (column, path) in IncidentColumns.scalars where column != "lat" && column != "lon" {
            if let value = state.value(at: path) { properties[column] = value }
        }
        for (column, path) in IncidentColumns.sets { properties[column] = .array(state.elements(of: path).map(JSONValue.string)) }
        properties["conflicts"] = .array(state.conflicts.map { .string($0.path) })
        return [
            "type": "Feature", "id": .string(state.id.rawValue),
            "geometry": ["type": "Point", "coordinates": [.number(lon), .number(lat)]],
            "properties": .object(properties),
        ]
    }
}
