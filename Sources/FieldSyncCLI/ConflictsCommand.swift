import ArgumentParser
import FieldSyncCore
import FieldSyncStore

/// `fieldsync conflicts`: every conflicted record, with each candidate and the base value.
struct ConflictsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conflicts", abstract: "List open conflicts: every candidate with author, node and time, and the base value.",
        discussion: "Examples:\n  fieldsync conflicts\n  fieldsync conflicts --json")

    @OptionGroup var storeOptions: StoreOptions
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let store = try storeOptions.open()
        let records = try store.records(conflictedOnly: true)
        var items: [JSONValue] = []
        var text = ""
        for state in records {
            let history = try store.history(of: state.id).map(\.revision)
            var conflicts: [JSONValue] = []
            text += "\(state.id)  \(TerminalText.visible(state.value(at: "title")?.stringValue ?? ""))\n"
            for conflict in state.conflicts {
                var object = RecordPresenter.conflictJSON(conflict).objectValue!
                let base = HistoryStep.base(of: conflict, in: history)
                object["base"] =
                    base.map { RecordPresenter.candidateJSON($0, number: 0).objectValue! }.map { o in
                        var o = o
                        o["number"] = nil
                        return JSONValue.object(o)
                    } ?? .null
                conflicts.append(.object(object))
                text +=
                    "  \(TerminalText.visible(conflict.path))"
                    + (conflict.path == "deleted"
                        ? "  (delete against edit: resolve with --keep or --delete)"
                        : IncidentSchema.isEntryPath(conflict.path)
                            ? "  (entry removed against an edit: resolve with --pick \(TerminalText.visible(conflict.path))=N, to keep or remove it)"
                            : "")
                    + "\n"
                if let base {
                    text +=
                        "      base: \(RecordPresenter.valueText(base.value))  — \(TerminalText.visible(base.author)), \(RecordPresenter.isoTime(base.time))\n"
                }
                for (i, c) in conflict.candidates.enumerated() {
                    let value =
                        RecordPresenter.candidateText(conflict.path, c.value)
                    text += "    [\(i + 1)] \(value)  — \(TerminalText.visible(c.author)), \(c.dot), \(RecordPresenter.isoTime(c.time))\n"
                }
                if let note = RecordPresenter.agreementNote(conflict) { text += "    \(note)\n" }
            }
            items.append([
                "id": .string(state.id.rawValue), "title": state.value(at: "title") ?? .null, "conflicts": .array(conflicts),
            ])
        }
        if json {
            print(JSONValue.array(items).prettyText())
        } else {
            print(records.isEmpty ? "no open conflicts" : text, terminator: records.isEmpty ? "\n" : "")
        }
    }
}
