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
        // Set fields: violations and tags as checkboxes (new tags typed as a list); each element
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
        // Tags: each shown tag a checkbox carrying its exact text (a tag may hold a comma), new
        // ones typed in a list.
        let keptTags = Set(form.all("tags.keep"))
        let shownTags = Set(form.all("o.tags.keep"))
        let tags = Set(current?.elements(of: "tags") ?? [])
        for removed in shownTags.subtracting(keptTags).sorted() where tags.contains(removed) {
            reading.changes.append(.remove(path: "tags", element: removed))
        }
        let typed = lines(form["tags.new"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespacesAndNewlines).nfc }
        for added in Set(typed.filter { !$0.isEmpty }).sorted() where !tags.contains(added) {
            reading.changes.append(.add(path: "tags", element: added))
        }
        // Collection entries: existing ones edited or removed, new ones added.
        for collection in collections {
            let existing = current.map { entries(of: collection.name, in: $0) } ?? []
            for entry in existing {
                let entryPath = "\(collection.name).\(entry)"
                if form["remove.\(entryPath)"] == "1" {
                    let paths = [entryPath] + collection.fields.map { "\(entryPath).\($0)" }
                    let name = "remove.\(entryPath)"
                    // A removal clears every field of the entry: not over what a sync brought since
                    // the form was shown, and not as a way to end a conflict without a note.
                    let changedSince = collection.fields.contains { field in
                        form["o.e.\(entryPath).\(field)"].map { lines($0) != lines(shownText(current, "\(entryPath).\(field)")) } ?? false
                    }
                    if let current, reading.mayResolve, paths.contains(where: current.isConflicted(at:)) {
                        reading.errors[name] = "this entry is in conflict: resolve it on the Conflicts page, with a note"
                    } else if changedSince {
                        reading.errors[name] = "this entry changed since you opened this form: reload the page and remove it again"
                    } else {
                        reading.changes.append(.removeEntry(collection: collection.name, entry: entry))
                    }
                    continue
                }
                for field in collection.fields {
                    let path = "\(entryPath).\(field)"
                    scalar(form, name: "e.\(path)", path: path, current: current, into: &reading)
                }
            }
            // An entry the form showed that a sync removed meanwhile: a change to it is not dropped silently.
            for name in form.names(withPrefix: "e.\(collection.name).") {
                let parts = name.split(separator: ".", omittingEmptySubsequences: false)
                guard parts.count == 4, !existing.contains(String(parts[2])), let original = form["o.\(name)"],
                    lines(form[name] ?? "") != lines(original)
                else { continue }
                reading.errors[name] = "this entry was removed since you opened this form (a sync): reload the page"
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
        let keys = customKeys(current)
        for key in keys {
            scalar(form, name: "c.\(key)", path: "custom.\(key)", current: current, into: &reading)
        }
        for name in form.names(withPrefix: "c.") where !keys.contains(String(name.dropFirst(2))) {
            if let original = form["o.\(name)"], lines(form[name] ?? "") != lines(original) {
                reading.errors[name] = "this free field was cleared since you opened this form (a sync): reload the page"
            }
        }
        let newKey = (form["custom.new.key"] ?? "").trimmingCharacters(in: .whitespaces).nfc
        let newValue = form["custom.new.value"] ?? ""
        if !newKey.isEmpty || !newValue.isEmpty {
            if newKey.isEmpty || newKey.contains(".") {
                reading.errors["custom.new.key"] = "a free field needs a key without dots"
            } else if keys.contains(newKey) || form["c.\(newKey)"] != nil {
                reading.errors["custom.new.key"] = "custom.\(newKey) exists already: change it in its own field above"
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

    /// Whether the value at `path` is edited in a textarea: the narrative, and any value that
    /// holds a line break (an input would drop it).
    static func isMultiline(_ path: String, _ text: String) -> Bool {
        path == "narrative" || text.contains(where: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" })
    }

    /// The text a control shows for the value at `path` of `state`.
    static func shownText(_ state: RecordState?, _ path: String) -> String {
        guard let value = state?.value(at: path) else { return "" }
        let text = value.stringValue ?? value.canonicalText
        return isMultiline(path, text) ? text : singleLine(text)
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
        let text = isMultiline(path, original) ? raw : raw.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
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
        formToken: String, submitLabel: String
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
            // Every message on top too (an error summary), each with the field it is about: some
            // fields have no control left on the page (an entry a sync removed).
            let summary = HTML.joined(
                errors.keys.sorted().map { name in
                    let field = name.split(separator: ".", maxSplits: 1).dropFirst().first.map(String.init) ?? name
                    return name.isEmpty ? "<li>\(errors[name]!)</li>" : "<li><code>\(field)</code>: \(errors[name]!)</li>"
                })
            parts.append("<ul class=\"error\">\(summary)</ul>")
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
            <input type="hidden" name="_form" value="\(formToken)">
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
        let shownTags = submitted.map { $0.all("o.tags.keep") } ?? state?.elements(of: "tags") ?? []
        let keptTags = Set(submitted.map { $0.all("tags.keep") } ?? shownTags)
        let tagBoxes = HTML.joined(
            shownTags.enumerated().map { index, tag in
                let id = controlID("tags.keep.\(index)")
                let checked: HTML = keptTags.contains(tag) ? " checked" : ""
                return
                    "<label for=\"\(id)\"><input type=\"checkbox\" id=\"\(id)\" name=\"tags.keep\" value=\"\(tag)\"\(checked)> <span dir=\"auto\">\(tag)</span></label><input type=\"hidden\" name=\"o.tags.keep\" value=\"\(tag)\">"
            })
        let tagsID = controlID("tags.new")
        let existingTags: HTML =
            shownTags.isEmpty ? "" : "<fieldset class=\"checks\"><legend>Tags (untick to remove)</legend>\(tagBoxes)</fieldset>"
        let typedTags = submitted.map { lines($0["tags.new"] ?? "") } ?? ""
        return """
            <fieldset class="checks"><legend>Violations</legend>\(boxes)\(fieldError("violations", errors["violations"]))</fieldset>\(originals)
            \(existingTags)
            <label for="\(tagsID)">New tags</label>
            <p class="hint" id="\(tagsID)-hint">Separated by commas.</p>
            <input type="text" id="\(tagsID)" name="tags.new" value="\(typedTags)" aria-describedby="\(tagsID)-hint" dir="auto">
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
        case _ where isMultiline(path, value) && type != nil:
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
