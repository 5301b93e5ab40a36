import FieldSyncCore
import Foundation

/// The incidents list: search over title, place and narrative, filters (governorate, violation,
/// date range, conflicted) and counts, as a table.
struct IncidentListPage {
    var query: FormData

    /// The first calendar date an incident's `occurred.start` names (`2025-03-07` of `2025-03-07~`
    /// or of `2025-03-07/2025-03-09`), or its month or year when it names no day.
    static func dateKey(_ state: RecordState) -> String? {
        guard var text = state.value(at: "occurred.start")?.stringValue else { return nil }
        if let slash = text.firstIndex(of: "/") { text = String(text[..<slash]) }
        text = String(text.drop(while: { !$0.isNumber }))
        let prefix = text.prefix(while: { $0.isNumber || $0 == "-" })
        return prefix.isEmpty ? nil : String(prefix.prefix(10))
    }

    /// Whether `state` passes the search and every filter given.
    func matches(_ state: RecordState) -> Bool {
        if let q = query["q"]?.trimmingCharacters(in: .whitespaces), !q.isEmpty {
            let haystack = ["title", "location.place", "narrative"].compactMap { state.value(at: $0)?.stringValue }
            guard haystack.contains(where: { $0.range(of: q, options: [.caseInsensitive, .diacriticInsensitive]) != nil }) else {
                return false
            }
        }
        if let governorate = query["governorate"], !governorate.isEmpty,
            state.value(at: "location.governorate")?.stringValue != governorate
        {
            return false
        }
        if let violation = query["violation"], !violation.isEmpty, !state.elements(of: "violations").contains(violation) { return false }
        let key = Self.dateKey(state)
        if let from = query["from"], !from.isEmpty {
            guard let key, key >= from || from.hasPrefix(key) else { return false }
        }
        if let to = query["to"], !to.isEmpty {
            guard let key, key <= to || to.hasPrefix(key) else { return false }
        }
        if query["conflicted"] == "1", !state.isConflicted { return false }
        return true
    }

    func render(_ records: [RecordState], session: (id: String, csrf: String)?) -> HTML {
        let shown = records.filter(matches).sorted { (Self.dateKey($0) ?? "", $0.id) > (Self.dateKey($1) ?? "", $1.id) }
        let governorates = Set(records.compactMap { $0.value(at: "location.governorate")?.stringValue }).sorted()
        let conflicted = shown.filter(\.isConflicted).count
        func options(_ values: [String], selected: String?) -> HTML {
            HTML.joined(
                ([""] + values).map { value in
                    let mark: HTML = value == (selected ?? "") ? " selected" : ""
                    return "<option value=\"\(value)\"\(mark)>\(value.isEmpty ? "any" : value)</option>"
                })
        }
        let checked: HTML = query["conflicted"] == "1" ? " checked" : ""
        let rows = HTML.joined(
            shown.map { state in
                let title = state.value(at: "title")?.stringValue ?? "(untitled)"
                let conflicts: HTML =
                    state.conflicts.isEmpty
                    ? "" : "<span class=\"conflict\">\(state.conflicts.count) conflict\(state.conflicts.count == 1 ? "" : "s")</span>"
                return """
                    <tr><td><a href="/incidents/\(state.id.rawValue)" dir="auto">\(title)</a></td>
                    <td>\(state.value(at: "occurred.start")?.stringValue ?? "")</td>
                    <td dir="auto">\(state.value(at: "location.place")?.stringValue ?? "")</td>
                    <td dir="auto">\(state.value(at: "location.governorate")?.stringValue ?? "")</td>
                    <td>\(state.elements(of: "violations").joined(separator: ", "))</td>
                    <td>\(state.value(at: "casualties.killed").map { $0.canonicalText } ?? "")</td>
                    <td>\(conflicts)</td></tr>
                    """
            })
        let table: HTML =
            shown.isEmpty
            ? "<p>No incidents match.</p>"
            : """
            <table><caption class="counts">\(shown.count) shown</caption>
            <thead><tr><th scope="col">Title</th><th scope="col">Occurred</th><th scope="col">Place</th><th scope="col">Governorate</th>
            <th scope="col">Violations</th><th scope="col">Killed</th><th scope="col">Conflicts</th></tr></thead>
            <tbody>\(rows)</tbody></table>
            """
        let body: HTML = """
            <h1>Incidents</h1>
            <p class="counts">\(shown.count) of \(records.count) incident\(records.count == 1 ? "" : "s")\(conflicted > 0 ? HTML("; \(conflicted) with open conflicts") : "")</p>
            <form method="get" action="/incidents" role="search" class="filters">
            <div><label for="q">Search title, place, narrative</label><input type="search" id="q" name="q" value="\(query["q"] ?? "")" dir="auto"></div>
            <div><label for="governorate">Governorate</label><select id="governorate" name="governorate">\(options(governorates, selected: query["governorate"]))</select></div>
            <div><label for="violation">Violation</label><select id="violation" name="violation">\(options(Vocabulary.violations, selected: query["violation"]))</select></div>
            <div><label for="from">From (YYYY-MM-DD)</label><input type="text" id="from" name="from" value="\(query["from"] ?? "")" inputmode="numeric"></div>
            <div><label for="to">To (YYYY-MM-DD)</label><input type="text" id="to" name="to" value="\(query["to"] ?? "")" inputmode="numeric"></div>
            <div class="choice"><label for="conflicted"><input type="checkbox" id="conflicted" name="conflicted" value="1"\(checked)> Only conflicted</label></div>
            <div><button type="submit">Filter</button></div>
            </form>
            \(table)
            """
        return ConsolePage.render(title: "Incidents", current: "/incidents", session: session, body: body)
    }
}
