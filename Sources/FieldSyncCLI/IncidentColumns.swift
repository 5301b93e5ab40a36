import FieldSyncCore
import Foundation

/// The flat columns of the CSV form of an incident, shared by `export --format csv` and `import`.
enum IncidentColumns {
    /// Column name and the scalar path it holds.
    static let scalars: [(column: String, path: String)] = [
        ("title", "title"), ("narrative", "narrative"), ("occurred_start", "occurred.start"), ("occurred_end", "occurred.end"),
        ("place", "location.place"), ("district", "location.district"), ("governorate", "location.governorate"),
        ("country", "location.country"), ("lat", "location.lat"), ("lon", "location.lon"), ("killed", "casualties.killed"),
        ("injured", "casualties.injured"), ("missing", "casualties.missing"), ("status", "status"),
    ]
    /// Set columns hold their elements joined by "; ".
    static let sets: [(column: String, path: String)] = [("violations", "violations"), ("tags", "tags")]
    /// Summaries that export writes and import ignores.
    static let summaries = ["id", "victims", "perpetrators", "sources", "conflicts"]

    static var header: [String] {
        ["id"] + scalars.map(\.column) + sets.map(\.column) + ["victims", "perpetrators", "sources", "conflicts"]
    }

    static let separator = "; "

    /// One row. A conflicted field is written as `CONFLICT: a | b` (candidates in display order), never
    /// flattened to one value.
    static func row(_ state: RecordState) -> [String] {
        let conflicts = Dictionary(state.conflicts.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        var row = [state.id.rawValue]
        for (_, path) in scalars {
            if let conflict = conflicts[path] {
                row.append("CONFLICT: " + conflict.candidates.map { RecordPresenter.exactText($0.value) }.joined(separator: " | "))
            } else {
                row.append(state.value(at: path).map { RecordPresenter.exactText($0) } ?? "")
            }
        }
        for (_, path) in sets { row.append(state.elements(of: path).joined(separator: separator)) }
        let fields = state.fields
        let victims = fields["victims"]?.objectValue ?? [:]
        let perpetrators = fields["perpetrators"]?.objectValue ?? [:]
        let sources = fields["sources"]?.objectValue ?? [:]
        row.append(victims.isEmpty ? "" : String(victims.count))
        row.append(
            JSONValue.sortedKeys(perpetrators).compactMap {
                perpetrators[$0]?["name"]?.stringValue ?? perpetrators[$0]?["group"]?.stringValue
            }.joined(separator: separator))
        row.append(sources.isEmpty ? "" : String(sources.count))
        row.append(state.conflicts.map(\.path).joined(separator: separator))
        return row
    }

    /// The changes that create an incident from one imported row; `header` names the columns.
    static func changes(header: [String], fields: [String]) throws(FieldSyncCore.ValidationError) -> [FieldChange] {
        guard fields.count == header.count else {
            throw ValidationError("", "\(fields.count) fields where the header has \(header.count)")
        }
        var changes: [FieldChange] = []
        for (column, text) in zip(header, fields) where !text.isEmpty {
            if let path = scalars.first(where: { $0.column == column })?.path {
                if text.hasPrefix("CONFLICT: ") {
                    throw ValidationError(path, "holds an exported conflict; choose one value before importing")
                }
                let value: JSONValue
                switch try IncidentSchema.kind(of: path) {
                case .scalar(.latitude), .scalar(.longitude), .scalar(.count):
                    guard let number = try? JSONValue(parsing: text), number.numberValue != nil else {
                        throw ValidationError(path, "expected a number, got \"\(text)\"")
                    }
                    value = number
                default:
                    value = .string(text)
                }
                changes.append(.set(path: path, value: value))
            } else if let path = sets.first(where: { $0.column == column })?.path {
                let elements = text.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                changes.append(.set(path: path, value: .array(elements.map(JSONValue.string))))
            }
        }
        return changes
    }
}
