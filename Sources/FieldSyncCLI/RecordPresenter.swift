import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore
import Foundation

/// How records, conflicts and histories are shown: the `--json` shapes (a public interface, see
/// README "JSON output") and the text a person reads.
enum RecordPresenter {
    static func isoTime(_ ms: Int64) -> String {
        Date(timeIntervalSince1970: Double(ms) / 1000)
            .formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }

    static func candidateJSON(_ c: Candidate, number: Int) -> JSONValue {
        [
            "number": .int(Int64(number)), "id": .string(c.dot.description), "value": c.value ?? .null,
            "node": .string(c.dot.node.rawValue),
            "counter": .int(Int64(c.dot.counter)), "author": .string(c.author), "time": .string(isoTime(c.time)),
        ]
    }

    static func conflictJSON(_ conflict: Conflict) -> JSONValue {
        [
            "path": .string(conflict.path),
            "candidates": .array(conflict.candidates.enumerated().map { candidateJSON($1, number: $0 + 1) }),
            "disputes": .array(conflict.disputes.map { .array([.string($0.low.description), .string($0.high.description)]) }),
        ]
    }

    /// Said under a conflict whose current values agree: why it is still listed (spec 6.3).
    static func agreementNote(_ conflict: Conflict) -> String? {
        guard let first = conflict.candidates.first, conflict.candidates.allSatisfy({ $0.value == first.value }) else { return nil }
        let pairs = conflict.disputes.map { "\($0.low) and \($0.high)" }.joined(separator: "; ")
        return "the current values agree, but no admin has resolved the disagreement between \(pairs): resolve to confirm"
    }

    /// `{id, deleted, fields, conflicts, version}`: the shape of `show --json` and of each `list --json` item.
    static func recordJSON(_ state: RecordState) -> JSONValue {
        [
            "id": .string(state.id.rawValue),
            "deleted": .bool(state.isDeleted),
            "fields": state.fields,
            "conflicts": .array(state.conflicts.map(conflictJSON)),
            "version": state.version.json,
        ]
    }

    /// A candidate's value as `conflicts` and `resolve` show it: a delete against an edit reads
    /// deleted/edited, an entry removed against an edit reads removed/kept.
    static func candidateText(_ path: String, _ value: JSONValue?) -> String {
        if path == "deleted" { return value == .bool(true) ? "deleted" : "edited" }
        if IncidentSchema.isEntryPath(path) { return value == nil ? "removed" : "kept (edited)" }
        return valueText(value)
    }

    /// A value as a person reads it on a terminal, with control characters shown visibly
    /// (``TerminalText``).
    static func valueText(_ value: JSONValue?) -> String { TerminalText.visible(exactText(value)) }

    /// A value as text, exactly (a string as it is, anything else as canonical JSON): for files.
    static func exactText(_ value: JSONValue?) -> String {
        guard let value else { return "(cleared)" }
        if case .string(let s) = value { return s }
        return value.canonicalText
    }

    /// Scalar paths with their display values, in path order, for text output.
    static func fieldLines(_ state: RecordState) -> [(String, String)] {
        var lines: [(String, String)] = []
        var sets: [String: [String]] = [:]
        let removed = state.removedEntries
        for key in state.registers.keys.sorted() where key.element != nil || state.isShownField(key, removed: removed) {
            if key.element != nil {
                if sets[key.path] == nil { sets[key.path] = state.elements(of: key.path) }
                continue
            }
            if let value = state.value(at: key.path) { lines.append((key.path, valueText(value))) }
        }
        for (path, elements) in sets where !elements.isEmpty {
            lines.append((path, TerminalText.visible(elements.joined(separator: ", "))))
        }
        return lines.sorted { $0.0 < $1.0 }.map { (TerminalText.visible($0.0), $0.1) }
    }

    static func recordText(_ state: RecordState) -> String {
        var out = "\(state.id)\(state.isDeleted ? "  (deleted)" : "")\n"
        let conflicted = Set(state.conflicts.map(\.path))
        let lines = fieldLines(state)
        let width = min(28, lines.map(\.0.count).max() ?? 0)
        for (path, value) in lines {
            let marker = conflicted.contains(path) ? "  [CONFLICT]" : ""
            out += "  \(path.padding(toLength: max(width, path.count), withPad: " ", startingAt: 0))  \(value)\(marker)\n"
        }
        for conflict in state.conflicts {
            out += "\nconflict on \(TerminalText.visible(conflict.path)):\n"
            for (i, c) in conflict.candidates.enumerated() {
                out +=
                    "  [\(i + 1)] \(candidateText(conflict.path, c.value))  — \(TerminalText.visible(c.author)), \(c.dot), \(isoTime(c.time))\n"
            }
            if let note = agreementNote(conflict) { out += "  \(note)\n" }
        }
        return out
    }

    /// A revision in a record's history, as data.
    static func historyJSON(_ stored: StoredRevision, _ step: HistoryStep, _ signature: SignatureStatus) -> JSONValue {
        let r = stored.revision
        var o: [String: JSONValue] = [
            "node": .string(r.dot.node.rawValue), "counter": .int(Int64(r.dot.counter)), "kind": .string(r.kind.rawValue),
            "author": .string(r.author), "time": .string(isoTime(r.time)), "received": .string(isoTime(stored.received)),
            "operations": .array(r.operations.map(\.json)), "context": r.context.json,
            "signed": .bool(r.signature != nil),
            "signature": .string(signature.state), "signed_by": signature.signer.map(JSONValue.string) ?? .null,
            "conflicts_created": .array(step.conflictsCreated.map(JSONValue.string)),
            "conflicts_resolved": .array(step.conflictsResolved.map(JSONValue.string)),
        ]
        if let note = r.note { o["note"] = .string(note) }
        return .object(o)
    }

    static func historyText(_ stored: StoredRevision, _ step: HistoryStep, _ signature: SignatureStatus) -> String {
        let r = stored.revision
        let action =
            step.conflictsResolved.isEmpty
            ? (r.kind == .delete ? "deleted the record" : "edited") : "resolved " + step.conflictsResolved.joined(separator: ", ")
        var out =
            "\(isoTime(r.time))  \(TerminalText.visible(r.author))  node \(r.dot.node) #\(r.dot.counter)  \(TerminalText.visible(action))\n"
        out += "    signature: \(signature.text)\(signature.signer.map { " (signed by \(TerminalText.visible($0))'s device)" } ?? "")\n"
        if let note = r.note { out += "    note: \(TerminalText.visible(note))\n" }
        if !step.conflictsCreated.isEmpty {
            out += "    conflict created on \(TerminalText.visible(step.conflictsCreated.joined(separator: ", ")))\n"
        }
        for op in r.operations {
            switch op {
            case .set(let path, let value): out += "    set \(TerminalText.visible(path)) = \(valueText(value))\n"
            case .unset(let path): out += "    cleared \(TerminalText.visible(path))\n"
            case .add(let path, let element): out += "    added \(TerminalText.visible(element)) to \(TerminalText.visible(path))\n"
            case .remove(let path, let element): out += "    removed \(TerminalText.visible(element)) from \(TerminalText.visible(path))\n"
            }
        }
        return out
    }
}
