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
        var changes: [FieldChange] = []
        /// Form field name → message.
        var errors: [String: String] = [:]
    }

    /// Reads `form` against `current` (nil for a new record).
    static func read(_ form: FormData, current: RecordState?) -> Reading {
        var reading = Reading()
        func fail(_ name: String, _ error: ValidationError) { reading.errors[name] = error.message }
        for group in groups {
            for field in group.fields {
                scalar(form, name: "f.\(field.path)", path: field.path, current: current, into: &reading)
            }
        }
        // Set fields: violations as checkboxes, tags as a comma-separated list.
        let violations = Set(form.all("violations"))
        for unknown in violations.subtracting(Vocabulary.violations).sorted() {
            fail("violations", ValidationError("violations", "\"\(unknown)\" is not a violation type"))
        }
        let tags = Set(
            (form["tags"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespacesAndNewlines).nfc }.filter { !$0.isEmpty }
        )
        for (path, wanted) in [("violations", violations), ("tags", tags)] where Set(current?.elements(of: path) ?? []) != wanted {
            reading.changes.append(.set(path: path, value: .array(wanted.sorted(by: JSONValue.utf8Less).map(JSONValue.string))))
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
            let newKeys = Set(
                form.names(withPrefix: "e.\(collection.name).new").compactMap { name -> String? in
                    let parts = name.split(separator: ".")
                    return parts.count == 4 ? String(parts[2]) : nil
                })
            for key in newKeys.sorted() {
                var fields: [String: JSONValue] = [:]
                for field in collection.fields {
                    let name = "e.\(collection.name).\(key).\(field)"
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

    /// One scalar field: a set when its text differs from the current value, a clear when emptied.
    static func scalar(_ form: FormData, name: String, path: String, current: RecordState?, into reading: inout Reading) {
        guard let raw = form[name] else { return }
        guard case .scalar(let type)? = try? IncidentSchema.kind(of: path) else { return }
        let text = path == "narrative" ? raw : raw.trimmingCharacters(in: .whitespacesAndNewlines)
        let present = current?.value(at: path)
        if text.isEmpty {
            guard present != nil else { return }
            if IncidentSchema.requiredFields.contains(path) {
                reading.errors[name] = "is required and cannot be cleared"
            } else {
                reading.changes.append(.unset(path: path))
            }
            return
        }
        switch value(text, as: type, at: path) {
        case .success(let value):
            if value != present { reading.changes.append(.set(path: path, value: value)) }
        case .failure(let error):
            reading.errors[name] = error.message
        }
    }

    /// The value typed for a field of `type`, checked by the schema.
    static func value(_ text: String, as type: IncidentSchema.FieldType, at path: String) -> Result<JSONValue, ValidationError> {
        let value: JSONValue
        switch type {
        case .count:
            value = Int64(text).map(JSONValue.int) ?? .string(text)
        case .latitude, .longitude:
            value = Int64(text).map(JSONValue.int) ?? Double(text).map(JSONValue.double) ?? .string(text)
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
        func shown(_ name: String, _ path: String) -> String {
            if let submitted { return submitted[name] ?? "" }
            guard let value = state?.value(at: path) else { return "" }
            return value.stringValue ?? value.canonicalText
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
                controls.append(
                    control(name: name, path: field.path, label: field.label, value: shown(name, field.path), error: errors[name]))
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
                    controls.append(control(name: name, path: path, label: label(field), value: shown(name, path), error: errors[name]))
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
                let newKeys =
                    submitted.map { form in
                        Set(
                            form.names(withPrefix: "e.\(collection.name).new").compactMap { name -> String? in
                                let parts = name.split(separator: ".")
                                return parts.count == 4 ? String(parts[2]) : nil
                            }
                        ).sorted()
                    } ?? []
                for (offset, key) in (newKeys.isEmpty ? ["new0"] : newKeys).enumerated() {
                    var controls: [HTML] = []
                    for field in collection.fields {
                        let name = "e.\(collection.name).\(key).\(field)"
                        controls.append(
                            control(
                                name: name, path: "\(collection.name).0.\(field)", label: label(field), value: submitted?[name] ?? "",
                                error: errors[name]))
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
            custom.append(
                control(name: name, path: "custom.\(key)", label: "custom.\(key)", value: shown(name, "custom.\(key)"), error: errors[name])
            )
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
        let boxes = HTML.joined(
            Vocabulary.violations.map { violation in
                let id = controlID("violations.\(violation)")
                let checked: HTML = chosen.contains(violation) ? " checked" : ""
                return
                    "<label for=\"\(id)\"><input type=\"checkbox\" id=\"\(id)\" name=\"violations\" value=\"\(violation)\"\(checked)> \(violation)</label>"
            })
        let tags = submitted?["tags"] ?? (state?.elements(of: "tags") ?? []).joined(separator: ", ")
        let tagsID = controlID("tags")
        return """
            <fieldset class="checks"><legend>Violations</legend>\(boxes)\(fieldError("violations", errors["violations"]))</fieldset>
            <label for="\(tagsID)">Tags</label>
            <p class="hint" id="\(tagsID)-hint">Separated by commas.</p>
            <input type="text" id="\(tagsID)" name="tags" value="\(tags)" aria-describedby="\(tagsID)-hint" dir="auto">
            """
    }

    /// One control for a scalar path, chosen by its type.
    static func control(name: String, path: String, label: String, value: String, error: String?) -> HTML {
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
            input = "<textarea id=\"\(id)\" name=\"\(name)\" dir=\"auto\"\(invalid) aria-describedby=\"\(id)-hint\">\(value)</textarea>"
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
        return """
            <label for="\(id)">\(label)\(required)</label>
            <p class="hint" id="\(id)-hint">\(hint)</p>
            \(input)\(fieldError(name, error))
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
