/// The incident record's fields and their types, after HURIDOCS' events formats.
///
/// Every operation that enters a replica, typed at the CLI, imported from a file or received from a
/// peer, is checked here. Errors name the path and the expected type. See `docs/RECORD-MODEL.md`.
public enum IncidentSchema {
    /// What a path addresses.
    public enum PathKind: Equatable, Sendable {
        case scalar(FieldType)
        /// A set of strings (`tags`, `violations`), changed element by element.
        case set(FieldType)
        /// A collection of sub-entries (`victims`, ...), addressed as `victims.<id>.<field>`.
        case collection
        /// One entry of a collection, `victims.<id>`: the register that says whether it is kept
        /// (`true`, written by every write of one of its fields) or removed (cleared, written by
        /// its removal), so that a removal concurrent with an edit of the entry is a conflict.
        case entry
    }

    /// `collection.entry` when `path` is a field of a collection entry (`victims.<id>.<field>`).
    ///
    /// Both this and ``isEntryPath(_:)`` run for every operation a replica applies, so for an ASCII
    /// path (every path the schema accepts) they find the dots in the bytes instead of splitting
    /// the path into an array of parts. Any other path is split by characters, where a dot that a
    /// combining mark extends is no separator.
    public static func entryPath(of path: String) -> String? {
        let utf8 = path.utf8
        guard utf8.allSatisfy({ $0 < 0x80 }) else {
            let parts = path.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 3, collections[String(parts[0])] != nil else { return nil }
            return "\(parts[0]).\(parts[1])"
        }
        guard let first = utf8.firstIndex(of: dot) else { return nil }
        guard let second = utf8[utf8.index(after: first)...].firstIndex(of: dot),
            !utf8[utf8.index(after: second)...].contains(dot), collections[String(path[..<first])] != nil
        else { return nil }
        return String(path[..<second])
    }

    /// Whether `path` is an entry's own register, `collection.entry`.
    public static func isEntryPath(_ path: String) -> Bool {
        let utf8 = path.utf8
        guard utf8.allSatisfy({ $0 < 0x80 }) else {
            let parts = path.split(separator: ".", omittingEmptySubsequences: false)
            return parts.count == 2 && collections[String(parts[0])] != nil && isEntryID(String(parts[1]))
        }
        guard let first = utf8.firstIndex(of: dot) else { return false }
        let rest = path[utf8.index(after: first)...]
        return !rest.utf8.contains(dot) && collections[String(path[..<first])] != nil && isEntryID(String(rest))
    }

    private static let dot = UInt8(ascii: ".")

    /// The type a scalar value or set element must have.
    public enum FieldType: Equatable, Sendable {
        case text, nonEmptyText, edtfDate, country, latitude, longitude, count, anyJSON, ageRange
        case oneOf([String])
        /// An attachment's `content`: `{"size", "chunk_size", "manifest"}` (``AttachmentContent``).
        case attachmentContent
        /// A media type such as `image/jpeg` (RFC 6838: type/subtype, no parameters).
        case mediaType

        public var expectation: String {
            switch self {
            case .text: "a string"
            case .nonEmptyText: "a non-empty string"
            case .edtfDate: "an EDTF date such as 2025-03-07, 2025-03, 2025-03-07~ or 2025-03-06/2025-03-08"
            case .country: "an ISO 3166-1 alpha-2 country code such as SY"
            case .latitude: "a number from -90 to 90"
            case .longitude: "a number from -180 to 180"
            case .count: "a non-negative integer"
            case .anyJSON: "any JSON value but null"
            case .ageRange: "an age range such as 18-30, 60+, child, adult, elderly or unknown"
            case .oneOf(let values): "one of " + values.joined(separator: ", ")
            case .attachmentContent:
                "an attachment's content {\"size\": BYTES, \"chunk_size\": BYTES, \"manifest\": SHA256} (written by `fieldsync attach`)"
            case .mediaType: "a media type such as image/jpeg"
            }
        }
    }

    public static let scalarFields: [String: FieldType] = [
        "title": .nonEmptyText,
        "narrative": .text,
        "occurred.start": .edtfDate,
        "occurred.end": .edtfDate,
        "location.place": .text,
        "location.district": .text,
        "location.governorate": .text,
        "location.country": .country,
        "location.lat": .latitude,
        "location.lon": .longitude,
        "casualties.killed": .count,
        "casualties.injured": .count,
        "casualties.missing": .count,
        "status": .oneOf(Vocabulary.status),
    ]

    public static let setFields: [String: FieldType] = [
        "tags": .nonEmptyText,
        "violations": .oneOf(Vocabulary.violations),
    ]

    /// Collections and the fields of their entries.
    public static let collections: [String: [String: FieldType]] = [
        "perpetrators": [
            "name": .text, "group": .text, "affiliation": .text,
            "identification": .oneOf(Vocabulary.identificationBasis),
        ],
        "victims": [
            "pseudonym": .text, "sex": .oneOf(Vocabulary.victimSex), "age_range": .ageRange,
            "status": .oneOf(Vocabulary.victimStatus),
        ],
        "sources": [
            "kind": .oneOf(Vocabulary.sourceKinds), "reliability": .oneOf(Vocabulary.reliability),
            "description": .text,
        ],
        // Entries keyed by the hex SHA-256 of the original bytes (`fieldsync attach`, spec 19).
        "attachments": [
            "content": .attachmentContent, "name": .nonEmptyText, "media_type": .mediaType, "caption": .text,
            "captured": .edtfDate,
        ],
    ]

    /// The collection whose entry ids are the SHA-256 of an attachment's bytes.
    public static let attachmentCollection = "attachments"

    /// Paths that can never be cleared.
    public static let requiredFields: Set<String> = ["title"]
    public static let maximumTextLength = 100_000
    public static let maximumPathLength = 256

    /// What `path` addresses; throws for an unknown path outside `custom.`.
    public static func kind(of path: String) throws(ValidationError) -> PathKind {
        if let type = scalarFields[path] { return .scalar(type) }
        if let type = setFields[path] { return .set(type) }
        if collections[path] != nil { return .collection }
        guard path.utf8.count <= maximumPathLength else { throw ValidationError(String(path.prefix(40)) + "…", "path too long") }
        let parts = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        if parts.first == "custom" {
            // One level only, so that `fields` nests every value at exactly one place.
            guard parts.count == 2, !parts[1].isEmpty else {
                throw ValidationError(path, "custom paths look like custom.KEY (one level; the value may be any JSON, objects included)")
            }
            return .scalar(.anyJSON)
        }
        if parts.count == 2, collections[parts[0]] != nil {
            try checkEntryID(parts[1], in: parts[0], at: path)
            return .entry
        }
        if parts.count == 3, let fields = collections[parts[0]] {
            try checkEntryID(parts[1], in: parts[0], at: path)
            guard let type = fields[parts[2]] else {
                throw ValidationError(path, "unknown field; \(parts[0]) entries have " + fields.keys.sorted().joined(separator: ", "))
            }
            return .scalar(type)
        }
        throw ValidationError(path, "unknown field; see `fieldsync help add` or docs/RECORD-MODEL.md (free keys go under custom.)")
    }

    /// Checks one operation's path and value. `requireNFC`: keys and set elements must be in
    /// Unicode NFC (spec 4.2); revisions of format 1, written before that rule, are read as they are.
    public static func validate(_ operation: FieldOperation, requireNFC: Bool = true) throws(ValidationError) {
        let path = operation.path
        // Canonically equivalent keys (café composed and decomposed) would be one field spelled
        // two ways: only the composed form (NFC) is written.
        if requireNFC, !path.isNFC { throw ValidationError(path, "keys are written in Unicode NFC (composed form)") }
        if requireNFC, case .add(_, let element) = operation, !element.isNFC {
            throw ValidationError(path, "set elements are written in Unicode NFC (composed form)")
        }
        switch (try kind(of: path), operation) {
        case (.scalar(let type), .set(_, let value)):
            try check(value, as: type, at: path)
        case (.scalar, .unset):
            if requiredFields.contains(path) { throw ValidationError(path, "is required and cannot be cleared") }
        case (.set(let type), .add(_, let element)), (.set(let type), .remove(_, let element)):
            try check(.string(element), as: type, at: path)
        case (.set, _):
            throw ValidationError(path, "is a set of strings: change it with \(path)+=VALUE or \(path)-=VALUE")
        case (.entry, .set(_, let value)):
            guard value == .bool(true) else {
                throw ValidationError(path, "an entry is kept with true, or removed with \(path)-=ID on its collection")
            }
        case (.entry, .unset):
            break
        case (.entry, _):
            throw ValidationError(path, "is a collection entry: remove it with \(path.split(separator: ".")[0])-=ID")
        case (.collection, _):
            throw ValidationError(path, "is a collection: add an entry with \(path)+={...} or address \(path).<id>.<field>")
        case (.scalar, _):
            throw ValidationError(path, "is not a set: use \(path)=VALUE")
        }
    }

    /// Checks a value against a field type.
    public static func check(_ value: JSONValue, as type: FieldType, at path: String) throws(ValidationError) {
        func fail() -> ValidationError {
            ValidationError(path, "expected \(type.expectation), got \(describe(value))")
        }
        if case .string(let s) = value, s.utf8.count > maximumTextLength {
            throw ValidationError(path, "text longer than \(maximumTextLength) bytes")
        }
        switch type {
        case .text:
            guard value.stringValue != nil else { throw fail() }
        case .nonEmptyText:
            guard let s = value.stringValue, s.contains(where: { !$0.isWhitespace }) else { throw fail() }
        case .edtfDate:
            guard let s = value.stringValue else { throw fail() }
            if let problem = EDTF.problem(in: s) { throw ValidationError(path, "\(problem) (\(type.expectation))") }
        case .country:
            guard let s = value.stringValue, CountryCode.isValid(s) else { throw fail() }
        case .latitude:
            guard let n = value.numberValue, (-90...90).contains(n) else { throw fail() }
        case .longitude:
            guard let n = value.numberValue, (-180...180).contains(n) else { throw fail() }
        case .count:
            guard let n = value.intValue, n >= 0 else { throw fail() }
        case .anyJSON:
            guard value != .null else { throw ValidationError(path, "null is not a value; clear the field with --unset \(path)") }
        case .ageRange:
            guard let s = value.stringValue, isAgeRange(s) else { throw fail() }
        case .oneOf(let values):
            guard let s = value.stringValue, values.contains(s) else { throw fail() }
        case .attachmentContent:
            guard AttachmentContent(json: value) != nil else { throw fail() }
        case .mediaType:
            guard let s = value.stringValue, isMediaType(s) else { throw fail() }
        }
    }

    static func checkEntryID(_ id: String, in collection: String, at path: String) throws(ValidationError) {
        if collection == attachmentCollection {
            guard Revision.isHash(id) else {
                throw ValidationError(path, "attachment entries are named by the SHA-256 of their bytes (64 lowercase hex digits)")
            }
        } else if !isEntryID(id) {
            throw ValidationError(path, "entry ids are 1 to 64 characters of a-z, 0-9 and -")
        }
    }

    /// Entry ids: 1 to 64 characters of `a-z`, `0-9` and `-`.
    public static func isEntryID(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 64
            && s.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
    }

    static func isAgeRange(_ s: String) -> Bool {
        if Vocabulary.ageRanges.contains(s) { return true }
        if s.hasSuffix("+"), let n = Int(s.dropLast()), (0...130).contains(n) { return true }
        let bounds = s.split(separator: "-", omittingEmptySubsequences: false)
        guard bounds.count == 2, let low = Int(bounds[0]), let high = Int(bounds[1]) else { return false }
        return 0 <= low && low <= high && high <= 130
    }

    /// `type/subtype` in the token characters of RFC 6838, at most 127 bytes each.
    static func isMediaType(_ s: String) -> Bool {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        func isToken(_ part: Substring) -> Bool {
            !part.isEmpty && part.utf8.count <= 127
                && part.utf8.allSatisfy { c in
                    (0x61...0x7A).contains(c) || (0x41...0x5A).contains(c) || (0x30...0x39).contains(c)
                        || "!#$&^_.+-".utf8.contains(c)
                }
        }
        return parts.count == 2 && isToken(parts[0]) && isToken(parts[1])
    }

    static func describe(_ value: JSONValue) -> String {
        let text = value.canonicalText
        return value.typeName + " " + (text.count > 40 ? String(text.prefix(40)) + "…" : text)
    }
}
