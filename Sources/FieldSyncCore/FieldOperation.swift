/// The address of one multi-value register inside a record: a field path, or one element of a set field.
public struct RegisterKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var path: String
    /// The set element, for `tags` and `violations`; nil for scalar fields.
    public var element: String?

    public init(path: String, element: String? = nil) {
        self.path = path
        self.element = element
    }

    /// The implicit register every revision writes: `true` for a delete, `false` for any other change.
    public static let deleted = RegisterKey(path: "deleted")

    public static func < (a: RegisterKey, b: RegisterKey) -> Bool {
        if a.path != b.path { return JSONValue.utf8Less(a.path, b.path) }
        switch (a.element, b.element) {
        case (nil, nil): return false
        case (nil, _): return true
        case (_, nil): return false
        case (let x?, let y?): return JSONValue.utf8Less(x, y)
        }
    }

    public var description: String { element.map { "\(path)[\($0)]" } ?? path }

    // Keys compare by their UTF-8 bytes, not by Unicode canonical equivalence as `String` does: two
    // spellings of "café" (precomposed and combining) are different registers, whatever the arrival
    // order, so replicas holding the same revisions hold byte-identical state.
    public static func == (a: RegisterKey, b: RegisterKey) -> Bool {
        a.path.utf8.elementsEqual(b.path.utf8)
            && (a.element == nil) == (b.element == nil)
            && (a.element.map { x in b.element.map { x.utf8.elementsEqual($0.utf8) } ?? false } ?? true)
    }

    public func hash(into hasher: inout Hasher) {
        for byte in path.utf8 { hasher.combine(byte) }
        if let element {
            hasher.combine(0xFF as UInt8)
            for byte in element.utf8 { hasher.combine(byte) }
        }
    }
}

/// One change to one field that a revision makes.
public enum FieldOperation: Hashable, Sendable {
    /// Writes a value to a scalar path.
    case set(path: String, value: JSONValue)
    /// Clears a scalar path.
    case unset(path: String)
    /// Adds an element to a set field (`tags`, `violations`).
    case add(path: String, element: String)
    /// Removes an element from a set field.
    case remove(path: String, element: String)

    public var path: String {
        switch self {
        case .set(let p, _), .unset(let p), .add(let p, _), .remove(let p, _): p
        }
    }

    /// The register this operation writes.
    public var key: RegisterKey {
        switch self {
        case .set(let p, _), .unset(let p): RegisterKey(path: p)
        case .add(let p, let e), .remove(let p, let e): RegisterKey(path: p, element: e)
        }
    }

    /// The value written to the register: nil for unset, `true`/`false` for set membership.
    public var registerValue: JSONValue? {
        switch self {
        case .set(_, let v): v
        case .unset: nil
        case .add: .bool(true)
        case .remove: .bool(false)
        }
    }

    public var json: JSONValue {
        switch self {
        case .set(let p, let v): ["op": "set", "path": .string(p), "value": v]
        case .unset(let p): ["op": "unset", "path": .string(p)]
        case .add(let p, let e): ["op": "add", "path": .string(p), "value": .string(e)]
        case .remove(let p, let e): ["op": "remove", "path": .string(p), "value": .string(e)]
        }
    }

    public init(json: JSONValue, at path: String) throws(DecodingProblem) {
        guard case .object(let o) = json else { throw DecodingProblem(path, "expected an object") }
        guard let op = o["op"]?.stringValue else { throw DecodingProblem("\(path).op", "expected a string") }
        guard let fieldPath = o["path"]?.stringValue, !fieldPath.isEmpty else {
            throw DecodingProblem("\(path).path", "expected a non-empty string")
        }
        let allowed: Set<String> = op == "unset" ? ["op", "path"] : ["op", "path", "value"]
        if let extra = o.keys.first(where: { !allowed.contains($0) }) {
            throw DecodingProblem("\(path).\(extra)", "unexpected member")
        }
        switch op {
        case "set":
            guard let v = o["value"] else { throw DecodingProblem("\(path).value", "missing") }
            self = .set(path: fieldPath, value: v)
        case "unset":
            self = .unset(path: fieldPath)
        case "add", "remove":
            guard let e = o["value"]?.stringValue else { throw DecodingProblem("\(path).value", "expected a string") }
            self = op == "add" ? .add(path: fieldPath, element: e) : .remove(path: fieldPath, element: e)
        default:
            throw DecodingProblem("\(path).op", "expected one of set, unset, add, remove")
        }
    }
}
