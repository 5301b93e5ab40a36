import FieldSyncCore

/// The add and edit form for every field of the record model: rendering (vocabularies as choices,
/// EDTF hints, collections with add and remove), and reading a submitted form back into the
/// changes it asks for. Values are checked by the same schema code as the CLI
/// (``IncidentSchema``), each message shown beside its field; only what changed is written.
struct IncidentForm {
    /// The groups of scalar fields, as docs/RECORD-MODEL.md orders them.
    static let groups: [(legend: String, fields: [(path: String, label: String)])] = [
        ("Incident", [("title", "Title"), ("status", "Review status"), ("narrative", "Narrative")]),
        ("When", [("occurred.start", "Occurred (start)"), ("occurred.end", "Occurred (end)")]),
        (
            "Where",
            [
                ("location.place", "Place"), ("location.district", "District"), ("location.governorate", "Governorate"),
                ("location.country", "Country code"), ("location.lat", "Latitude"), ("location.lon", "Longitude"),
            ]
        ),
        ("Casualties", [("casualties.killed", "Killed"), ("casualties.injured", "Injured"), ("casualties.missing", "Missing")]),
    ]

    /// Collections edited in the form, with their fields in display order. Attachments are added
    /// with `fieldsync attach` (their bytes must be hashed and kept); their descriptions are edited here.
    static let collections: [(name: String, singular: String, fields: [String], addable: Bool)] = [
        ("victims", "Victim", ["pseudonym", "sex", "age_range", "status"], true),
        ("perpetrators", "Perpetrator", ["name", "group", "affiliation", "identification"], true),
        ("sources", "Source", ["kind", "reliability", "description"], true),
        ("attachments", "Attachment", ["name", "media_type", "caption", "captured"], false),
    ]

    static func label(_ field: String) -> String {
        field.replacingOccurrences(of: "_", with: " ").capitalized
    }

    /// The id of a form control, from its field path.
    static func controlID(_ name: String) -> String {
        "f-" + name.map { $0.isLetter || $0.isNumber || $0 == "-" ? String($0) : "-" }.joined()
    }

    // MARK: Reading a submitted form

    /// What a submitted form asks for: the changes, or the messages per form field.
    struct Reading {
        /// Whether this replica's edits end conflicts (an admin's, or unenrolled).
        var mayResolve = false
        var changes: [FieldChange] = []
        /// Form field name → message.
        var errors: [String: String] = [:]
    }

    /// Reads `form` against `current` (nil for a new record).
    static func read(_ form: FormData, current: RecordState?, mayResolve: Bool) -> Reading {
        var reading = Reading(mayResolve: mayResolve)
        func fail(_ name: String, _ error: ValidationError) { reading.errors[name] = error.message }
        for group in groups {
            for field in group.fields {
                scalar(form, name: "f.\(field.path)", path: field.path, current: current, into: &reading)
            }
        }
        // Set fields: violations as checkboxes, tags as a comma-separated list; each element
        // added or removed on its own (never the whole set rewritten), and only what the person
        // changed from what the form showed.
        let violations = Set(form.all("violations"))
        for unknown in violations.subtracting(Vocabulary.violations).sorted() {
            fail("violations", ValidationError("violations", "\"\(unknown)\" is not a violation type"))
        }
        let shownViolations = Set(form.all("o.violations"))
        let present = Set(current?.elements(of: "violations") ?? [])
        for added in violations.subtracting(shownViolations).sorted() where !present.contains(added) {
            reading.changes.append(.add(path: "violations", element: added))
        }
        for removed in shownViolations.subtracting(violations).sorted() where present.contains(removed) {
            reading.changes.append(.remove(path: "violations", element: removed))
        }
        let tagsText = lines(form["tags"] ?? "")
        if tagsText != lines(form["o.tags"] ?? "") {
            func split(_ text: String) -> Set<String> {
                Set(text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespacesAndNewlines).nfc }.filter { !$0.isEmpty })
            }
            let wanted = split(tagsText)
            let shown = split(lines(form["o.tags"] ?? ""))
            let tags = Set(current?.elements(of: "tags") ?? [])
            for added in wanted.subtracting(shown).sorted() where !tags.contains(added) {
                reading.changes.append(.add(path: "tags", element: added))
            }
            for removed in shown.subtracting(wanted).sorted() where tags.contains(removed) {
                reading.changes.append(.remove(path: "tags", element: removed))
            }
        }
        // Collection entries: existing ones edited or removed, new ones added.
        for collection in collections {
            let existing = current.map { entries(of: collection.name, in: $0) } ?? []
            for entry in existing {
                if form["remove.\(collection.name).\(entry)"] == "1" {
                    reading.changes.append(.removeEntry(collection: collection.name, entry: entry))
                    continue
                }
                for field in collection.fields {
                    let path = "\(collection.name).\(entry).\(field)"
                    scalar(form, name: "e.\(path)", path: path, current: current, into: &reading)
                }
            }
            guard collection.addable else { continue }
            for key in newEntryKeys(form, collection: collection.name) {
                var fields: [String: JSONValue] = [:]
                for field in collection.fields {
                    let name = "n.\(collection.name).\(key).\(field)"
                    guard let text = form[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty else { continue }
                    let type = (try? IncidentSchema.kind(of: "\(collection.name).0.\(field)")).flatMap {
                        kind -> IncidentSchema.FieldType? in
                        if case .scalar(let type) = kind { return type } else { return nil }
                    }
                    guard let type else { continue }
                    switch value(text, as: type, at: "\(collection.name).\(field)") {
                    case .success(let value): fields[field] = value
                    case .failure(let error): fail(name, error)
                    }
                }
                if !fields.isEmpty { reading.changes.append(.addEntry(collection: collection.name, fields: .object(fields))) }
            }
        }
        // Free fields: each existing custom.KEY, and one new key with its value.
        for key in customKeys(current) {
            scalar(form, name: "c.\(key)", path: "custom.\(key)", current: current, into: &reading)
        }
        let newKey = (form["custom.new.key"] ?? "").trimmingCharacters(in: .whitespaces).nfc
        let newValue = form["custom.new.value"] ?? ""
        if !newKey.isEmpty || !newValue.isEmpty {
            if newKey.isEmpty || newKey.contains(".") {
                reading.errors["custom.new.key"] = "a free field needs a key without dots"
            } else if newValue.isEmpty {
                reading.errors["custom.new.value"] = "give a value for custom.\(newKey)"
            } else {
                reading.changes.append(.set(path: "custom.\(newKey)", value: (try? JSONValue(parsing: newValue)) ?? .string(newValue)))
            }
        }
        let setsTitle = reading.changes.contains { change in
            if case .set(let path, _) = change { path == "title" } else { false }
        }
        if current == nil, reading.errors["f.title"] == nil, !setsTitle {
            reading.errors["f.title"] = "is required"
        }
        return reading
    }

    /// What a single-line input shows of a value: browsers drop line breaks from `<input>`.
    static func singleLine(_ text: String) -> String { text.filter { $0 != "\n" && $0 != "\r" && $0 != "\r\n" } }

    /// The text a control shows for the value at `path` of `state`.
    static func shownText(_ state: RecordState?, _ path: String) -> String {
        guard let value = state?.value(at: path) else { return "" }
        let text = value.stringValue ?? value.canonicalText
        return path == "narrative" ? text : singleLine(text)
    }

    /// Line breaks as a browser hands them back: it reads CRLF and CR in a page as LF, and sends
    /// every line break of a form as CRLF. Both sides of a comparison go through this.
    static func lines(_ text: String) -> String {
        text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
    }

    /// One scalar field. Untouched (the text sent is the text the form showed, `o.NAME`), it is left
    /// alone whatever it holds now. Changed: refused when the record's value changed since the form
    /// was shown (a sync, another window) or when it is in conflict on a replica that may resolve
    /// (that needs a note: the conflicts page); else a set, or a clear when emptied.
    static func scalar(_ form: FormData, name: String, path: String, current: RecordState?, into reading: inout Reading) {
        guard let raw = form[name].map(lines) else { return }
        guard case .scalar(let type)? = try? IncidentSchema.kind(of: path) else { return }
        let original = form["o.\(name)"].map(lines) ?? ""
        guard raw != original else { return }
        if current != nil, lines(shownText(current, path)) != original {
            reading.errors[name] =
                "changed since you opened this form (now \"\(shownText(current, path).prefix(80))\"): reload the page and make your change again"
            return
        }
        if let current, reading.mayResolve, current.isConflicted(at: path) {
            reading.errors[name] = "is in conflict: resolve it on the Conflicts page, with a note"
            return
        }
        let text = path == "narrative" ? raw : raw.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.isEmpty {
            guard current?.value(at: path) != nil else { return }
            if IncidentSchema.requiredFields.contains(path) {
                reading.errors[name] = "is required and cannot be cleared"
            } else {
                reading.changes.append(.unset(path: path))
            }
            return
        }
        switch value(text, as: type, at: path) {
        case .success(let value): reading.changes.append(.set(path: path, value: value))
        case .failure(let error): reading.errors[name] = error.message
        }
    }

    /// The value typed for a field of `type`, checked by the schema.
    static func value(_ text: String, as type: IncidentSchema.FieldType, at path: String) -> Result<JSONValue, ValidationError> {
        let value: JSONValue
        switch type {
        case .count, .latitude, .longitude:
            // As `--set PATH=VALUE` reads a number: JSON, in its one canonical form.
            value = (try? JSONValue(parsing: text)) ?? .string(text)
        case .anyJSON:
            value = (try? JSONValue(parsing: text)) ?? .string(text)
        default:
            value = .string(text)
        }
        do {
            try IncidentSchema.check(value, as: type, at: path)
            return .success(value)
        } catch {
            return .failure(error)
        }
    }

    /// The numbers of the new entries a form holds (`n.COLLECTION.K.FIELD`: a name space that no
    /// entry id can take, since ids never hold a dot), in order.
    static func newEntryKeys(_ form: FormData, collection: String) -> [String] {
        Set(
            form.names(withPrefix: "n.\(collection).").compactMap { name -> Int? in
                let parts = name.split(separator: ".")
                return parts.count == 4 ? Int(parts[2]) : nil
            }
        ).sorted().map(String.init)
    }

    /// The entry ids of a collection that the record shows (removed entries are gone).
    static func entries(of collection: String, in state: RecordState) -> [String] {
        guard let object = state.fields.objectValue?[collection]?.objectValue else { return [] }
        return object.keys.sorted()
    }

    static func customKeys(_ state: RecordState?) -> [String] {
        guard let object = state?.fields.objectValue?["custom"]?.objectValue else { return [] }
        return object.keys.sorted()
    }

    // MARK: Rendering

    /// The form, filled from `state` (or from what was submitted, when it comes back with errors).
    static func render(
        action: String, state: RecordState?, submitted: FormData?, errors: [String: String], session: (id: String, csrf: String)?,
        submitLabel: String
    ) -> HTML {
        // A form sent back with errors shows what was typed, and keeps what it first showed as
        // the original, so that untouched fields stay untouched.
        func shown(_ name: String, _ path: String) -> (value: String, original: String) {
            let original = submitted.map { lines($0["o.\(name)"] ?? "") } ?? shownText(state, path)
            return (submitted.map { lines($0[name] ?? "") } ?? original, original)
        }
        var parts: [HTML] = []
        if !errors.isEmpty {
            parts.append(
                "<p class=\"error\" role=\"alert\">Nothing was saved: \(errors.count == 1 ? "one field needs" : "\(errors.count) fields need") attention.</p>"
            )
            if let general = errors[""] { parts.append("<p class=\"error\">\(general)</p>") }
        }
        for group in groups {
            var controls: [HTML] = []
            for field in group.fields {
                let name = "f.\(field.path)"
                let (value, original) = shown(name, field.path)
                controls.append(
                    control(
                        name: name, path: field.path, label: field.label, value: value, original: original, error: errors[name],
                        conflicted: state?.isConflicted(at: field.path) == true))
                if field.path == "status" {
                    controls.append(setControls(state: state, submitted: submitted, errors: errors))
                }
            }
            parts.append("<fieldset><legend>\(group.legend)</legend>\(controls)</fieldset>")
        }
        for collection in collections {
            var entries: [HTML] = []
            let existing = state.map { Self.entries(of: collection.name, in: $0) } ?? []
            for (index, entry) in existing.enumerated() {
                var controls: [HTML] = []
                for field in collection.fields {
                    let name = "e.\(collection.name).\(entry).\(field)"
                    let path = "\(collection.name).\(entry).\(field)"
                    let (value, original) = shown(name, path)
                    controls.append(
                        control(
                            name: name, path: path, label: label(field), value: value, original: original, error: errors[name],
                            conflicted: state?.isConflicted(at: path) == true))
                }
                let removeID = controlID("remove.\(collection.name).\(entry)")
                let checked = submitted?["remove.\(collection.name).\(entry)"] == "1" ? " checked" : ""
                controls.append(
                    "<p class=\"choice\"><label for=\"\(removeID)\"><input type=\"checkbox\" id=\"\(removeID)\" name=\"remove.\(collection.name).\(entry)\" value=\"1\"\(HTML(trusted: checked))> Remove this \(collection.singular.lowercased())</label></p>"
                )
                entries.append(
                    "<fieldset><legend>\(collection.singular) \(index + 1)</legend><p class=\"hint\">entry \(entry)</p>\(controls)</fieldset>"
                )
            }
            if collection.addable {
                let newKeys = submitted.map { newEntryKeys($0, collection: collection.name) } ?? []
                for (offset, key) in (newKeys.isEmpty ? ["0"] : newKeys).enumerated() {
                    var controls: [HTML] = []
                    for field in collection.fields {
                        let name = "n.\(collection.name).\(key).\(field)"
                        controls.append(
                            control(
                                name: name, path: "\(collection.name).0.\(field)", label: label(field),
                                value: submitted.map { lines($0[name] ?? "") } ?? "", original: nil, error: errors[name]))
                    }
                    let marker: HTML =
                        offset == 0 ? "data-blank-entry=\"\(collection.name)\"" : "data-new-entry=\"\(collection.name)\""
                    entries.append(
                        "<fieldset \(marker)><legend>New \(collection.singular.lowercased()) \(existing.count + offset + 1)</legend>\(controls)</fieldset>"
                    )
                }
                entries.append(
                    "<button type=\"button\" class=\"secondary\" data-add-entry=\"\(collection.name)\" hidden>Add another \(collection.singular.lowercased())</button>"
                )
            } else if existing.isEmpty {
                continue
            }
            parts.append(
                "<fieldset><legend>\(collection.name.capitalized)</legend>\(entries)\(collection.addable ? "" : HTML("<p class=\"hint\">Attach files with <code>fieldsync attach</code>.</p>"))</fieldset>"
            )
        }
        var custom: [HTML] = []
        for key in customKeys(state) {
            let name = "c.\(key)"
            let (value, original) = shown(name, "custom.\(key)")
            custom.append(
                control(
                    name: name, path: "custom.\(key)", label: "custom.\(key)", value: value, original: original, error: errors[name],
                    conflicted: state?.isConflicted(at: "custom.\(key)") == true))
        }
        custom.append(
            plain(
                name: "custom.new.key", label: "New free field: key", value: submitted?["custom.new.key"] ?? "",
                error: errors["custom.new.key"]))
        custom.append(
            plain(
                name: "custom.new.value", label: "New free field: value (text, or JSON)", value: submitted?["custom.new.value"] ?? "",
                error: errors["custom.new.value"]))
        parts.append("<fieldset><legend>Free fields</legend>\(custom)</fieldset>")
        return """
            <form method="post" action="\(action)" novalidate>
            \(ConsolePage.csrfField(session))
            \(parts)
            <p><button type="submit">\(submitLabel)</button></p>
            </form>
            """
    }

    /// Violations as checkboxes and tags as a list, under the incident's group.
    static func setControls(state: RecordState?, submitted: FormData?, errors: [String: String]) -> HTML {
        let chosen = Set(submitted.map { $0.all("violations") } ?? state?.elements(of: "violations") ?? [])
        let shownViolations = submitted.map { $0.all("o.violations") } ?? state?.elements(of: "violations") ?? []
        let originals = HTML.joined(shownViolations.map { "<input type=\"hidden\" name=\"o.violations\" value=\"\($0)\">" })
        let boxes = HTML.joined(
            Vocabulary.violations.map { violation in
                let id = controlID("violations.\(violation)")
                let checked: HTML = chosen.contains(violation) ? " checked" : ""
                return
                    "<label for=\"\(id)\"><input type=\"checkbox\" id=\"\(id)\" name=\"violations\" value=\"\(violation)\"\(checked)> \(violation)</label>"
            })
        let shownTags =
            submitted.map { lines($0["o.tags"] ?? "") } ?? singleLine((state?.elements(of: "tags") ?? []).joined(separator: ", "))
        let tags = submitted.map { lines($0["tags"] ?? "") } ?? shownTags
        let tagsID = controlID("tags")
        return """
            <fieldset class="checks"><legend>Violations</legend>\(boxes)\(fieldError("violations", errors["violations"]))</fieldset>\(originals)
            <input type="hidden" name="o.tags" value="\(shownTags)">
            <label for="\(tagsID)">Tags</label>
            <p class="hint" id="\(tagsID)-hint">Separated by commas.</p>
            <input type="text" id="\(tagsID)" name="tags" value="\(tags)" aria-describedby="\(tagsID)-hint" dir="auto">
            """
    }

    /// One control for a scalar path, chosen by its type.
    static func control(
        name: String, path: String, label: String, value: String, original: String?, error: String?, conflicted: Bool = false
    ) -> HTML {
        let id = controlID(name)
        let type: IncidentSchema.FieldType? = {
            if case .scalar(let type)? = try? IncidentSchema.kind(of: path) { return type }
            return nil
        }()
        var hint = ""
        let input: HTML
        let invalid: HTML = error == nil ? "" : " aria-invalid=\"true\""
        switch type {
        case .oneOf(let choices)?:
            let options = HTML.joined(
                ([""] + choices).map { choice in
                    let selected: HTML = choice == value ? " selected" : ""
                    return "<option value=\"\(choice)\"\(selected)>\(choice.isEmpty ? "—" : choice)</option>"
                })
            input = "<select id=\"\(id)\" name=\"\(name)\"\(invalid) aria-describedby=\"\(id)-hint\">\(options)</select>"
        case .text? where path == "narrative":
            // The line break after the tag is eaten by the HTML parser: without it a narrative that
            // begins with one would lose it.
            input = "<textarea id=\"\(id)\" name=\"\(name)\" dir=\"auto\"\(invalid) aria-describedby=\"\(id)-hint\">\n\(value)</textarea>"
        default:
            switch type {
            case .edtfDate?:
                hint = "An EDTF date: 2025-03-07, 2025-03, 2025-03-07~ (about), 2025-03-07? (uncertain) or 2025-03-06/2025-03-08."
            case .count?: hint = "A whole number, 0 or more."
            case .latitude?: hint = "A number from -90 to 90."
            case .longitude?: hint = "A number from -180 to 180."
            case .country?: hint = "Two letters, ISO 3166-1: SY, IQ, YE."
            case .ageRange?: hint = "18-30, 60+, child, adult, elderly or unknown."
            case .anyJSON?: hint = "Text, or JSON. Empty clears it."
            case .mediaType?: hint = "A media type such as image/jpeg."
            default: break
            }
            let mode: HTML = type == .count ? " inputmode=\"numeric\"" : ""
            input =
                "<input type=\"text\" id=\"\(id)\" name=\"\(name)\" value=\"\(value)\" dir=\"auto\"\(mode)\(invalid) aria-describedby=\"\(id)-hint\">"
        }
        let required: HTML = path == "title" ? " <span class=\"hint\">(required)</span>" : ""
        let mark: HTML = conflicted ? " <span class=\"conflict\">(in conflict)</span>" : ""
        let kept: HTML = original.map { "<input type=\"hidden\" name=\"o.\(name)\" value=\"\($0)\">" } ?? ""
        return """
            <label for="\(id)">\(label)\(required)\(mark)</label>
            <p class="hint" id="\(id)-hint">\(hint)</p>
            \(input)\(kept)\(fieldError(name, error))
            """
    }

    static func plain(name: String, label: String, value: String, error: String?) -> HTML {
        let id = controlID(name)
        return """
            <label for="\(id)">\(label)</label>
            <input type="text" id="\(id)" name="\(name)" value="\(value)" dir="auto">\(fieldError(name, error))
            """
    }

    static func fieldError(_ name: String, _ error: String?) -> HTML {
        guard let error else { return "" }
        return "<p class=\"field-error\" id=\"\(controlID(name))-error\" role=\"alert\">\(error)</p>"
    }
}
