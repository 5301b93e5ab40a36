/// Reads an incident written as nested JSON (the shape `show --json` prints under `fields`) into
/// the changes that create it.
public enum IncidentDocument {
    /// Flattens `{"title": ..., "location": {"place": ...}, "victims": [{...}], "tags": [...], "custom": {...}}`.
    /// Members `id`, `deleted`, `conflicts` and `version` (as printed by `show --json`) are ignored,
    /// and a document with a `fields` member is read from there.
    public static func changes(from document: JSONValue) throws(ValidationError) -> [FieldChange] {
        guard var object = document.objectValue else { throw ValidationError("", "an incident is a JSON object") }
        if let fields = object["fields"]?.objectValue { object = fields }
        for ignored in ["id", "deleted", "conflicts", "version"] { object[ignored] = nil }
        var changes: [FieldChange] = []
        try flatten(object, prefix: "", into: &changes)
        return changes
    }

    static func flatten(_ object: [String: JSONValue], prefix: String, into changes: inout [FieldChange]) throws(ValidationError) {
        for key in JSONValue.sortedKeys(object) {
            let path = prefix + key
            let value = object[key]!
            if path == "custom" {
                guard let custom = value.objectValue else { throw ValidationError(path, "expected an object of free keys") }
                for k in JSONValue.sortedKeys(custom) { changes.append(.set(path: "custom.\(k)", value: custom[k]!)) }
                continue
            }
            if IncidentSchema.scalarFields[path] != nil || IncidentSchema.setFields[path] != nil
                || IncidentSchema.collections[path] != nil
            {
                changes.append(.set(path: path, value: value))
            } else if let nested = value.objectValue, ["location", "occurred", "casualties"].contains(path) {
                try flatten(nested, prefix: path + ".", into: &changes)
            } else {
                _ = try IncidentSchema.kind(of: path)  // throws the "unknown field" error
                changes.append(.set(path: path, value: value))
            }
        }
    }
}
