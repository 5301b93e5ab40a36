import FieldSyncCore
import FieldSyncStore

/// Conflict review: every conflicted path of every record with its base value (what the
/// candidates were written over) and each candidate side by side, with author, node, time and
/// candidate id. Who may resolve picks one or enters a corrected value, with a required note; the
/// resolution is a ``ConflictResolution``, exactly what `fieldsync resolve` writes. Everyone
/// else sees the same, read-only.
struct ConflictsPage {
    /// The value the candidates of `path` were written over: the last write of the register that
    /// every candidate had seen; nil when they were the first writes (or it was cleared).
    /// `history` is the record's history in canonical order (``HistoryOrder``).
    static func baseValue(of path: String, candidates: [Candidate], history: [StoredRevision]) -> (found: Bool, value: JSONValue?) {
        let key = RegisterKey(path: path)
        let byDot = Dictionary(history.map { ($0.revision.dot, $0.revision) }, uniquingKeysWith: { a, _ in a })
        let contexts = candidates.compactMap { byDot[$0.dot]?.context }
        guard contexts.count == candidates.count else { return (false, nil) }
        let candidateDots = Set(candidates.map(\.dot))
        var base: (found: Bool, value: JSONValue?) = (false, nil)
        for stored in history {
            let revision = stored.revision
            guard !candidateDots.contains(revision.dot), contexts.allSatisfy({ $0[revision.dot.node] >= revision.dot.counter }),
                let op = revision.operations.last(where: { $0.key == key })
            else { continue }
            base = (true, op.registerValue)
        }
        return base
    }

    static func shown(_ path: String, _ value: JSONValue?) -> String {
        if path == "deleted" { return value == .bool(true) ? "deleted" : "edited (kept)" }
        if IncidentSchema.isEntryPath(path) { return value == nil ? "removed" : "kept (edited)" }
        guard let value else { return "(cleared)" }
        return value.stringValue ?? value.canonicalText
    }

    static func render(
        store: ReplicaStore, records: [RecordState], mayResolve: Bool, message: (recordID: RecordID, text: String, isError: Bool)?,
        session: (id: String, csrf: String)?
    ) throws -> HTML {
        var parts: [HTML] = ["<h1>Conflicts</h1>"]
        if !mayResolve {
            parts.append(
                "<p class=\"notice\">You are enrolled as a documenter: you see the conflicts, and an admin decides them. Your edits of a conflicted field are kept as one more candidate.</p>"
            )
        }
        // A record the resolution settled is no longer listed: its message goes on top.
        if let message, !records.contains(where: { $0.id == message.recordID }) {
            parts.append(
                message.isError
                    ? "<p class=\"error\" role=\"alert\">\(message.text)</p>"
                    : "<p class=\"notice\" role=\"status\">\(message.text) <a href=\"/incidents/\(message.recordID.rawValue)\">See the incident</a>.</p>"
            )
        }
        if records.isEmpty { parts.append("<p>No open conflicts.</p>") }
        for state in records {
            let title = state.value(at: "title")?.stringValue ?? "(untitled)"
            let history = HistoryOrder.canonical(try store.history(of: state.id))
            var paths: [HTML] = []
            for conflict in state.conflicts {
                let base = baseValue(of: conflict.path, candidates: conflict.candidates, history: history)
                let fieldID = "p-\(state.id.rawValue)-\(conflict.path)".map { $0.isLetter || $0.isNumber ? String($0) : "-" }.joined()
                var rows: [HTML] = []
                var corrected: HTML = ""
                for (index, candidate) in conflict.candidates.enumerated() {
                    let id = "\(fieldID)-\(index + 1)"
                    let choice: HTML =
                        mayResolve
                        ? "<input type=\"radio\" id=\"\(id)\" name=\"pick.\(conflict.path)\" value=\"\(candidate.dot.description)\">"
                        : ""
                    rows.append(
                        """
                        <tr><td>\(choice)<label for="\(id)">\(index + 1)</label></td><td dir="auto">\(shown(conflict.path, candidate.value))</td>
                        <td dir="auto">\(candidate.author)</td><td><code>\(candidate.dot.node.rawValue)</code></td>
                        <td>\(ConsolePage.time(candidate.time))</td><td><code>\(candidate.dot.description)</code></td></tr>
                        """)
                }
                if mayResolve, conflict.path != "deleted", !IncidentSchema.isEntryPath(conflict.path) {
                    let id = "\(fieldID)-new"
                    rows.append(
                        """
                        <tr><td><input type="radio" id="\(id)" name="pick.\(conflict.path)" value="new"><label for="\(id)">new</label></td>
                        <td colspan="5">a corrected value, entered below</td></tr>
                        """)
                    let label: HTML = "<label for=\"\(id)-value\">A corrected value for \(conflict.path) (pick “new”)</label>"
                    corrected =
                        conflict.path == "narrative"
                        ? "\(label)<textarea id=\"\(id)-value\" name=\"value.\(conflict.path)\" dir=\"auto\"></textarea>"
                        : "\(label)<input type=\"text\" id=\"\(id)-value\" name=\"value.\(conflict.path)\" dir=\"auto\">"
                }
                let shownDots = conflict.candidates.map(\.dot.description).joined(separator: ",")
                let baseText: HTML =
                    base.found
                    ? "<span dir=\"auto\">\(shown(conflict.path, base.value))</span>"
                    : "<span class=\"hint\">(none: both were first writes)</span>"
                paths.append(
                    """
                    <h3>\(conflict.path)</h3>
                    <p>Base value: \(baseText)</p>
                    <input type="hidden" name="shown.\(conflict.path)" value="\(shownDots)">
                    <fieldset><legend>Candidates for \(conflict.path)</legend>
                    <table><thead><tr><th scope="col">Pick</th><th scope="col">Value</th><th scope="col">Author</th><th scope="col">Node</th>
                    <th scope="col">Time</th><th scope="col">Candidate id</th></tr></thead><tbody>\(rows)</tbody></table>
                    </fieldset>
                    \(corrected)
                    """)
            }
            var feedback: HTML = ""
            if let message, message.recordID == state.id {
                feedback =
                    message.isError
                    ? "<p class=\"error\" role=\"alert\">\(message.text)</p>" : "<p class=\"notice\" role=\"status\">\(message.text)</p>"
            }
            // The `deleted` register is written by every resolution: what it held when shown is checked too.
            let deletedDots = state.candidates(at: "deleted").map(\.dot.description).joined(separator: ",")
            let controls: HTML =
                mayResolve
                ? """
                <input type="hidden" name="shown.deleted" value="\(deletedDots)">
                <label for="note-\(state.id.rawValue)">Note: why you resolved it this way (required)</label>
                <textarea id="note-\(state.id.rawValue)" name="note" dir="auto" required></textarea>
                <p><button type="submit">Resolve</button></p>
                """ : "<p class=\"hint\">An admin decides these conflicts.</p>"
            let inner: HTML = "\(feedback)\(paths)\(controls)"
            let form: HTML =
                mayResolve
                ? "<form method=\"post\" action=\"/conflicts/\(state.id.rawValue)\">\(ConsolePage.csrfField(session))\(inner)</form>"
                : inner
            parts.append(
                """
                <section id="r-\(state.id.rawValue)" aria-labelledby="h-\(state.id.rawValue)">
                <h2 id="h-\(state.id.rawValue)"><a href="/incidents/\(state.id.rawValue)" dir="auto">\(title)</a></h2>
                \(form)
                </section>
                """)
        }
        return ConsolePage.render(title: "Conflicts", current: "/conflicts", session: session, body: HTML.joined(parts))
    }

    /// The resolution a submitted form asks for, checked against the record as it is now: a
    /// candidate id must still be a candidate, the candidates must be those the page showed.
    static func resolution(_ form: FormData, state: RecordState) throws -> ConflictResolution {
        var choices: [String: JSONValue?] = [:]
        if !state.isConflicted(at: "deleted"),
            form["shown.deleted"] != state.candidates(at: "deleted").map(\.dot.description).joined(separator: ",")
        {
            throw ConsoleError(.conflict, "the record changed since the page was shown; look again and resolve again")
        }
        for conflict in state.conflicts {
            let shownDots = form["shown.\(conflict.path)"]
            let current = conflict.candidates.map(\.dot.description).joined(separator: ",")
            // A corrected value typed without ticking "new" is meant as one: never ignored.
            let typedValue = !(form["value.\(conflict.path)"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
            guard let pick = form["pick.\(conflict.path)"].flatMap({ $0.isEmpty ? nil : $0 }) ?? (typedValue ? "new" : nil) else {
                continue
            }
            guard shownDots == current else {
                throw ConsoleError(
                    .conflict, "the candidates of \(conflict.path) changed since the page was shown; look again and resolve again")
            }
            if pick == "new" {
                let typed = IncidentForm.lines(form["value.\(conflict.path)"] ?? "")
                let text = conflict.path == "narrative" ? typed : typed.trimmingCharacters(in: .whitespacesAndNewlines)
                guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                    throw ConsoleError(.unprocessableContent, "give the corrected value for \(conflict.path)")
                }
                guard case .scalar(let type) = try IncidentSchema.kind(of: conflict.path) else {
                    throw ConsoleError(.unprocessableContent, "\(conflict.path) takes one of its candidates")
                }
                switch IncidentForm.value(text, as: type, at: conflict.path) {
                case .success(let value): choices[conflict.path] = value
                case .failure(let error): throw ConsoleError(.unprocessableContent, error.description)
                }
            } else {
                guard let dot = Dot(pick), let candidate = conflict.candidates.first(where: { $0.dot == dot }) else {
                    throw ConsoleError(.unprocessableContent, "\(pick) is not a current candidate of \(conflict.path)")
                }
                choices[conflict.path] = conflict.path == "deleted" ? .some(candidate.value ?? .bool(false)) : candidate.value
            }
        }
        for name in form.names(withPrefix: "pick.") where !state.isConflicted(at: String(name.dropFirst(5))) {
            throw ConsoleError(.conflict, "\(name.dropFirst(5)) is no longer in conflict; look again")
        }
        // The note as typed, as `resolve --note` keeps it.
        let note = IncidentForm.lines(form["note"] ?? "")
        guard !note.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw ConsoleError(.unprocessableContent, "a note is required: say why you resolved it this way")
        }
        guard !choices.isEmpty else { throw ConsoleError(.unprocessableContent, "pick a candidate or enter a corrected value") }
        return ConflictResolution(choices: choices, note: note)
    }
}
