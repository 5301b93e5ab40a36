extension JSONValue {
    /// Equality by UTF-8 bytes. `==` compares strings by Unicode canonical equivalence, so two
    /// spellings of "café" are equal there but encode to different canonical bytes (and signatures).
    public func isIdentical(to other: JSONValue) -> Bool {
        switch (self, other) {
        case (.string(let a), .string(let b)): return a.utf8.elementsEqual(b.utf8)
        case (.array(let a), .array(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.isIdentical(to: $1) }
        case (.object(let a), .object(let b)):
            guard a.count == b.count else { return false }
            let aKeys = JSONValue.sortedKeys(a)
            let bKeys = JSONValue.sortedKeys(b)
            return zip(aKeys, bKeys).allSatisfy { ak, bk in ak.utf8.elementsEqual(bk.utf8) && a[ak]!.isIdentical(to: b[bk]!) }
        default: return self == other
        }
    }
}

extension Revision {
    /// True when both revisions have the same canonical bytes: equality by UTF-8 bytes, which is
    /// what a signature covers (see ``JSONValue/isIdentical(to:)``).
    public func isIdentical(to other: Revision) -> Bool {
        guard dot == other.dot, record == other.record, kind == other.kind, time == other.time, context == other.context,
            format == other.format, previous == other.previous,
            author.utf8.elementsEqual(other.author.utf8), operations.count == other.operations.count
        else { return false }
        switch (note, other.note) {
        case (nil, nil): break
        case (let a?, let b?) where a.utf8.elementsEqual(b.utf8): break
        default: return false
        }
        switch (signature, other.signature) {
        case (nil, nil): break
        case (let a?, let b?) where a.utf8.elementsEqual(b.utf8): break
        default: return false
        }
        return zip(operations, other.operations).allSatisfy { $0.isIdentical(to: $1) }
    }
}

extension FieldOperation {
    /// Equality by UTF-8 bytes. An operation is its register (compared by bytes) and the value it
    /// writes there, so comparing those two compares everything it encodes.
    public func isIdentical(to other: FieldOperation) -> Bool {
        guard key == other.key else { return false }
        switch (registerValue, other.registerValue) {
        case (nil, nil): return true
        case (let a?, let b?): return a.isIdentical(to: b)
        default: return false
        }
    }
}
