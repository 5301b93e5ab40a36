extension JSONValue {
    /// Equality by UTF-8 bytes. `==` compares strings by Unicode canonical equivalence, so two
    /// spellings of "café" are equal there but encode to different canonical bytes (and signatures).
    public func isIdentical(to other: JSONValue) -> Bool {
        switch (self, other) {
        case (.string(let a), .string(let b)): return String.sameBytes(a, b)
        case (.array(let a), .array(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.isIdentical(to: $1) }
        case (.object(let a), .object(let b)):
            guard a.count == b.count else { return false }
            let aKeys = JSONValue.sortedKeys(a)
            let bKeys = JSONValue.sortedKeys(b)
            return zip(aKeys, bKeys).allSatisfy { ak, bk in String.sameBytes(ak, bk) && a[ak]!.isIdentical(to: b[bk]!) }
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
            String.sameBytes(author, other.author), operations.count == other.operations.count
        else { return false }
        switch (note, other.note) {
        case (nil, nil): break
        case (let a?, let b?) where String.sameBytes(a, b): break
        default: return false
        }
        switch (signature, other.signature) {
        case (nil, nil): break
        case (let a?, let b?) where String.sameBytes(a, b): break
        default: return false
        }
        // The same array storage holds the same operations: a revision compared with the copy of
        // itself that was checked ahead (every pulled or pushed page) needs no walk through them.
        let shared = operations.withUnsafeBufferPointer { mine in
            other.operations.withUnsafeBufferPointer { theirs in mine.baseAddress == theirs.baseAddress }
        }
        return shared || zip(operations, other.operations).allSatisfy { $0.isIdentical(to: $1) }
    }
}

extension FieldOperation {
    /// Equality by UTF-8 bytes. An operation is its register (compared by bytes) and the value it
    /// writes there, so comparing those two compares everything it encodes.
    public func isIdentical(to other: FieldOperation) -> Bool {
        switch (self, other) {
        case (.set(let p, let v), .set(let q, let w)): String.sameBytes(p, q) && v.isIdentical(to: w)
        case (.unset(let p), .unset(let q)): String.sameBytes(p, q)
        case (.add(let p, let e), .add(let q, let f)), (.remove(let p, let e), .remove(let q, let f)):
            String.sameBytes(p, q) && String.sameBytes(e, f)
        default: false
        }
    }
}

extension String {
    /// True when both strings have the same UTF-8 bytes (not merely canonically equivalent, as `==`
    /// says). Two copies of one string share their storage, which is recognised without reading it:
    /// a received revision is compared with the one checked ahead this way, field by field.
    @inlinable
    public static func sameBytes(_ a: String, _ b: String) -> Bool {
        // Equal representations are the same storage, or the same small string held inline.
        if unsafeBitCast(a, to: (UInt64, UInt64).self) == unsafeBitCast(b, to: (UInt64, UInt64).self) { return true }
        guard a.utf8.count == b.utf8.count else { return false }
        var a = a
        var b = b
        return a.withUTF8 { x in b.withUTF8 { y in x.elementsEqual(y) } }
    }
}
