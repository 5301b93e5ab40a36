import ArgumentParser
import FieldSyncCore
import FieldSyncStore
import Foundation

/// `fieldsync resolve`: settles conflicts with a revision whose context covers every candidate seen.
struct ResolveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resolve", abstract: "Resolve a record's conflicts, with a note giving the reason.",
        discussion: """
            The resolution is a revision like any other: the losing candidates stay in history forever. \
            A candidate that arrives later, concurrently, stays in conflict. Run on a terminal without \
            --pick/--set/--keep/--delete to be asked path by path.

            Examples:
              fieldsync resolve 0193a2 --pick casualties.killed=2 --note "Hospital list confirms 14"
              fieldsync resolve 0193a2 --pick casualties.killed=e2575e297f2ecfbc:1 --note "Hospital list confirms 14"
              fieldsync resolve 0193a2 --set casualties.killed=14 --note "Corrected after second visit"
              fieldsync resolve 0193a2 --keep --note "Deletion was a mistake"
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "The record id, or any unique prefix of it.") var id: String
    @Option(
        name: .customLong("pick"),
        help: ArgumentHelp(
            "Pick a candidate for PATH: its id NODE:COUNTER, or its number N, as `fieldsync conflicts` shows them.", valueName: "PATH=ID|N")
    )
    var picks: [String] = []
    @Option(name: .customLong("set"), help: ArgumentHelp("Write a new value for a conflicted PATH.", valueName: "PATH=VALUE"))
    var assignments: [String] = []
    @Flag(help: "Delete against edit: keep the record.") var keep = false
    @Flag(help: "Delete against edit: delete the record.") var delete = false
    @Option(help: "Why you resolved it this way (required).") var note: String?
    @Flag(help: "Print the record as JSON afterwards.") var json = false

    func validate() throws {
        if keep && delete { throw ValidationError("give --keep or --delete, not both") }
        if let note, note.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { throw ValidationError("--note must not be empty") }
    }

    func run() async throws {
        let store = try storeOptions.open()
        let recordID = try store.resolveID(id)
        guard let state = try store.record(recordID) else { throw CLIError("no record with id \(id)") }
        guard state.isConflicted else { throw CLIError("record \(recordID) has no open conflicts") }
        try ConflictResolution.checkAuthority(of: store)
        var choices = try parseChoices(state)
        var note = self.note
        if choices.isEmpty {
            guard isatty(STDIN_FILENO) == 1 else {
                throw CLIError("nothing to resolve: give --pick PATH=N, --set PATH=VALUE, --keep or --delete (see `fieldsync conflicts`)")
            }
            choices = try askInteractively(state)
            if note == nil { note = Self.prompt("Note (why): ") }
        }
        guard let note, !note.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw CLIError("--note TEXT is required: say why you resolved it this way")
        }
        guard !choices.isEmpty else { throw CLIError("nothing chosen; the record is unchanged") }
        let revision: Revision
        do {
            revision = try ConflictResolution(choices: choices, note: note).commit(to: store, shown: state, now: nowMilliseconds())
        } catch let refusal as ConflictResolution.Refusal {
            throw CLIError(Self.wording(refusal))
        }
        let after = try store.record(recordID)!
        if json {
            print(RecordPresenter.recordJSON(after).prettyText())
        } else {
            let settled = choices.keys.sorted().joined(separator: ", ")
            print("resolved \(TerminalText.visible(settled)) of \(recordID) as \(revision.dot)")
            for path in choices.keys.sorted() {
                let chosen =
                    path == "deleted"
                    ? (choices[path]! == .bool(true) ? "deleted" : "kept") : RecordPresenter.candidateText(path, choices[path]!)
                print("  \(TerminalText.visible(path)) = \(chosen)")
                for candidate in state.candidates(at: path) {
                    let value = RecordPresenter.candidateText(path, candidate.value)
                    print("    supersedes \(candidate.dot): \(value)  — \(TerminalText.visible(candidate.author))")
                }
            }
            let remaining = after.conflicts.map(\.path)
            if !remaining.isEmpty { print("still in conflict: \(TerminalText.visible(remaining.joined(separator: ", ")))") }
        }
    }

    /// A refusal in terms of this command's options.
    static func wording(_ refusal: ConflictResolution.Refusal) -> String {
        switch refusal {
        case .deleteNotChosen(let id):
            "record \(id) was also deleted on one replica while edited on another: add --keep or --delete"
        case .entryNotChosen(let entry):
            "the entry \(TerminalText.visible(entry)) is also in conflict (removed against an edit): add --pick \(TerminalText.visible(entry))=N to keep or remove it"
        case .deleteWithValues: "--delete cannot be combined with --pick or --set: a delete writes no fields"
        case .candidatesChanged(let path, let now):
            "the candidates of \(path) changed while resolving (now \(now.map(\.description).joined(separator: ", "))); run `fieldsync conflicts` and resolve again"
        }
    }

    /// Path → chosen value (nil clears the field); `deleted` → true/false for --delete/--keep.
    func parseChoices(_ state: RecordState) throws -> [String: JSONValue?] {
        let conflicts = Dictionary(state.conflicts.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        var choices: [String: JSONValue?] = [:]
        func conflict(_ path: String) throws -> Conflict {
            guard let conflict = conflicts[path] else {
                throw CLIError(
                    "\(path) is not in conflict in record \(state.id); conflicted: \(conflicts.keys.sorted().joined(separator: ", "))")
            }
            return conflict
        }
        for pick in picks {
            guard let eq = pick.lastIndex(of: "=") else { throw CLIError("--pick takes PATH=N, e.g. casualties.killed=2") }
            let path = String(pick[..<eq])
            let c = try conflict(path)
            let named = String(pick[pick.index(after: eq)...])
            let chosen: Candidate
            if let dot = Dot(named) {
                // A stable id: the candidate's dot, which no arrival of another candidate renumbers.
                guard let candidate = c.candidates.first(where: { $0.dot == dot }) else {
                    throw CLIError(
                        "\(dot) is not a current candidate of \(path); its candidates are \(c.candidates.map(\.dot.description).joined(separator: ", "))"
                    )
                }
                chosen = candidate
            } else if let n = Int(named), (1...c.candidates.count).contains(n) {
                chosen = c.candidates[n - 1]
            } else {
                throw CLIError(
                    "\(path) has candidates 1 to \(c.candidates.count) (or their ids NODE:COUNTER); \"\(named)\" is not one of them")
            }
            guard choices.updateValue(chosen.value, forKey: path) == nil else { throw CLIError("\(path) is chosen twice") }
        }
        for assignment in assignments {
            guard case .set(let path, let value) = try FieldChange.parse(assignment: assignment) else {
                throw CLIError("--set takes PATH=VALUE")
            }
            _ = try conflict(path)
            guard path != "deleted" else { throw CLIError("resolve a delete against an edit with --keep or --delete") }
            guard choices.updateValue(value, forKey: path) == nil else { throw CLIError("\(path) is chosen twice") }
        }
        if keep || delete {
            _ = try conflict("deleted")
            choices["deleted"] = .bool(delete)
        }
        return choices
    }

    func askInteractively(_ state: RecordState) throws -> [String: JSONValue?] {
        var choices: [String: JSONValue?] = [:]
        print("\(state.id)  \(TerminalText.visible(state.value(at: "title")?.stringValue ?? ""))")
        for conflict in state.conflicts {
            print("\n\(TerminalText.visible(conflict.path)):")
            for (i, c) in conflict.candidates.enumerated() {
                print(
                    "  [\(i + 1)] \(RecordPresenter.valueText(c.value))  — \(TerminalText.visible(c.author)), \(RecordPresenter.isoTime(c.time))"
                )
            }
            if conflict.path == "deleted" {
                let answer = Self.prompt("keep or delete the record? [k/d, empty skips] ")
                if answer == "k" { choices["deleted"] = .bool(false) } else if answer == "d" { choices["deleted"] = .bool(true) }
                continue
            }
            let answer = Self.prompt("number, =VALUE for a new value, or empty to skip: ")
            if answer.hasPrefix("="), case .set(_, let value)? = try? FieldChange.parse(assignment: conflict.path + answer) {
                choices[conflict.path] = value
            } else if let n = Int(answer), (1...conflict.candidates.count).contains(n) {
                choices[conflict.path] = conflict.candidates[n - 1].value
            }
        }
        return choices
    }

    static func prompt(_ text: String) -> String {
        print(text, terminator: "")
        fflush(nil)
        return readLine()?.trimmingCharacters(in: .whitespaces) ?? ""
    }
}
