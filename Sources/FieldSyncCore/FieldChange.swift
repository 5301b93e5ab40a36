/// A change as a person asks for it (`--set`, `--unset`, a JSON document), before it is checked
/// against the record and turned into ``FieldOperation``s by ``LocalEdit``.
public enum FieldChange: Hashable, Sendable {
    /// The change with its path, set elements and new entries' keys in Unicode NFC.
    public var normalised: FieldChange {
        switch self {
        case .set(let path, let value):
            // A set field given as an array of elements: each element is a key too.
            if let items = value.arrayValue, items.allSatisfy({ $0.stringValue != nil }),
                case .set? = try? IncidentSchema.kind(of: path.nfc)
            {
                return .set(path: path.nfc, value: .array(items.map { .string($0.stringValue!.nfc) }))
            }
            return .set(path: path.nfc, value: value)
        case .unset(let path): return .unset(path: path.nfc)
        case .add(let path, let element): return .add(path: path.nfc, element: element.nfc)
        case .remove(let path, let element): return .remove(path: path.nfc, element: element.nfc)
        case .addEntry, .removeEntry: return self
        }
    }

    case set(path: String, value: JSONValue)
    case unset(path: String)
    case add(path: String, element: String)
    case remove(path: String, element: String)
    /// A new entry in a collection, e.g. `victims+={"pseudonym":"V-12"}`.
    case addEntry(collection: String, fields: JSONValue)
    /// Removes a collection entry by its id, e.g. `victims-=3f2a9c1b0d4e`.
    case removeEntry(collection: String, entry: String)

    /// Parses `PATH=VALUE`, `PATH+=VALUE` or `PATH-=VALUE`. VALUE is read as JSON when it is valid
    /// JSON and as a plain string otherwise.
    public static func parse(assignment: String) throws(ValidationError) -> FieldChange {
        guard let eq = assignment.firstIndex(of: "=") else {
            throw ValidationError(assignment, "expected PATH=VALUE, PATH+=VALUE or PATH-=VALUE")
        }
        // The key is read in NFC, so a decomposed spelling typed or pasted names the same field;
        // the value stays exactly as typed (set elements are normalised with the change).
        var path = String(assignment[..<eq]).nfc
        let text = String(assignment[assignment.index(after: eq)...])
        var mode: Character = "="
        if let last = path.last, last == "+" || last == "-" {
            mode = last
            path.removeLast()
        }
        guard !path.isEmpty else { throw ValidationError(assignment, "missing PATH before =") }
        let kind = try IncidentSchema.kind(of: path)
        var value = (try? JSONValue(parsing: text)) ?? .string(text)
        // A text field given `title=2025` or `narrative=1.50` means exactly the text typed.
        if case .scalar(let type) = kind, [.text, .nonEmptyText, .edtfDate].contains(type), value.stringValue == nil {
            value = .string(text)
        }
        switch (mode, kind) {
        case ("=", _):
            return .set(path: path, value: value)
        case ("+", .set):
            return .add(path: path, element: text)
        case ("-", .set):
            return .remove(path: path, element: text)
        case ("+", .collection):
            guard case .object = value else {
                throw ValidationError(path, "expected a JSON object for the new entry, e.g. \(path)+='{\"name\":\"...\"}'")
            }
            return .addEntry(collection: path, fields: value)
        case ("-", .collection):
            return .removeEntry(collection: path, entry: text)
        default:
            throw ValidationError(path, "+= and -= apply to set fields (tags, violations) and collections (victims, perpetrators, sources)")
        }
    }
}

/// Turns requested changes into the operations of one local revision, checked against the schema
/// and the record's current state.
public enum LocalEdit {
    /// - Parameters:
    ///   - current: the record as this replica holds it; nil when creating a record.
    ///   - newEntryID: makes ids for new collection entries.
    public static func operations(
        for changes: [FieldChange], current: RecordState?, newEntryID: () -> String
    ) throws(ValidationError) -> [FieldOperation] {
        var operations: [FieldOperation] = []
        // What a person typed or a file held, in NFC: the only spelling a key or element has.
        for change in changes.map(\.normalised) {
            switch change {
            case .set(let path, let value):
                switch try IncidentSchema.kind(of: path) {
                case .scalar(let type):
                    operations.append(.set(path: path, value: coerce(value, to: type)))
                case .set:
                    guard let items = value.arrayValue, items.allSatisfy({ $0.stringValue != nil }) else {
                        throw ValidationError(path, "expected an array of strings, or use \(path)+=VALUE / \(path)-=VALUE")
                    }
                    let wanted = Set(items.compactMap(\.stringValue))
                    let present = Set(current?.elements(of: path) ?? [])
                    for e in wanted.subtracting(present).sorted() { operations.append(.add(path: path, element: e)) }
                    for e in present.subtracting(wanted).sorted() { operations.append(.remove(path: path, element: e)) }
                case .entry:
                    operations.append(.set(path: path, value: value))
                case .collection:
                    let entries: [(String?, JSONValue)]
                    if let array = value.arrayValue {
                        entries = array.map { (nil, $0) }
                    } else if let object = value.objectValue {
                        entries = JSONValue.sortedKeys(object).map { ($0, object[$0]!) }
                    } else {
                        throw ValidationError(path, "expected an array of entry objects")
                    }
                    for (id, fields) in entries {
                        operations += try entryOperations(collection: path, id: id ?? newEntryID(), fields: fields)
                    }
                }
            case .unset(let path):
                operations.append(.unset(path: path))
            case .add(let path, let element):
                operations.append(.add(path: path, element: element))
            case .remove(let path, let element):
                guard current?.elements(of: path).contains(element) == true else {
                    throw ValidationError(path, "\"\(element)\" is not in the set")
                }
                operations.append(.remove(path: path, element: element))
            case .addEntry(let collection, let fields):
                operations += try entryOperations(collection: collection, id: newEntryID(), fields: fields)
            case .removeEntry(let collection, let entry):
                let paths = current?.entryPaths(collection: collection, entry: entry) ?? []
                guard !paths.isEmpty else { throw ValidationError("\(collection).\(entry)", "no such entry") }
                // The entry's own register says it was removed: a concurrent edit of the entry is
                // then a conflict on the entry, not a fragment that comes back (spec 6.6).
                operations += paths.map { FieldOperation.unset(path: $0) } + [.unset(path: "\(collection).\(entry)")]
            }
        }
        var seen = Set<RegisterKey>()
        for op in operations {
            try IncidentSchema.validate(op)
            guard seen.insert(op.key).inserted else { throw ValidationError(op.key.description, "changed twice in one edit") }
        }
        if current == nil || current?.value(at: "title") == nil {
            guard operations.contains(where: { $0.path == "title" && $0.registerValue != nil }) else {
                throw ValidationError("title", "is required: give --title or set title")
            }
        }
        return operations
    }

    static func entryOperations(collection: String, id: String, fields: JSONValue) throws(ValidationError) -> [FieldOperation] {
        guard let object = fields.objectValue, !object.isEmpty else {
            throw ValidationError(collection, "an entry is a non-empty JSON object")
        }
        guard IncidentSchema.isEntryID(id) else {
            throw ValidationError("\(collection).\(id)", "entry ids are 1 to 64 characters of a-z, 0-9 and -")
        }
        return try JSONValue.sortedKeys(object).map { (key) throws(ValidationError) -> FieldOperation in
            let path = "\(collection).\(id).\(key)"
            guard case .scalar(let type) = try IncidentSchema.kind(of: path) else { throw ValidationError(path, "not an entry field") }
            return .set(path: path, value: coerce(object[key]!, to: type))
        }
    }

    /// A text field given `--set title=2025` means the text "2025", not a number.
    static func coerce(_ value: JSONValue, to type: IncidentSchema.FieldType) -> JSONValue {
        switch (type, value) {
        case (.text, .int), (.text, .double), (.text, .bool), (.nonEmptyText, .int), (.nonEmptyText, .double),
            (.nonEmptyText, .bool), (.edtfDate, .int):
            return .string(value.canonicalText)
        default:
            return value
        }
    }
}
