/// RFC 4180 comma-separated values: writing fields with quoting, and reading records with the line
/// number each starts on (for error messages). Spreadsheet formulas are neutralised on the way out
/// and restored on the way in (``guardFormula(_:)``).
enum CSV {
    /// Quoted when it holds a comma, a quote, CR or LF, or starts or ends with a space (which some
    /// readers trim). Scalars, not Characters: Swift counts CRLF as one Character that is neither.
    static func field(_ text: String) -> String {
        let scalars = text.unicodeScalars
        let needsQuotes =
            scalars.contains { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }
            || scalars.first == " " || scalars.last == " "
        guard needsQuotes else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    static func row(_ fields: [String]) -> String { fields.map(field).joined(separator: ",") + "\r\n" }

    /// Scalars that make a spreadsheet read a cell as a formula when it starts with one (OWASP).
    static let formulaStarts: Set<Unicode.Scalar> = ["=", "+", "-", "@", "\t", "\r"]

    /// Whether a cell must be guarded: it starts, after any apostrophes, with a formula scalar, and
    /// its first scalar is a formula scalar or an apostrophe; plain decimal numbers (`-33.51`) are
    /// never formulas and stay as they are.
    static func needsGuard(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, formulaStarts.contains(first) || first == "'" else { return false }
        guard let start = text.unicodeScalars.first(where: { $0 != "'" }), formulaStarts.contains(start) else { return false }
        return !isPlainNumber(text)
    }

    static func isPlainNumber(_ text: String) -> Bool {
        var scalars = Substring(text).unicodeScalars[...]
        if scalars.first == "-" { scalars = scalars.dropFirst() }
        let parts = String(scalars).split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count) else { return false }
        return parts.allSatisfy { !$0.isEmpty && $0.unicodeScalars.allSatisfy { (0x30...0x39).contains($0.value) } }
    }

    /// `'` before a cell a spreadsheet would run as a formula; ``unguardFormula(_:)`` undoes it
    /// exactly, for every value (a value that itself starts with apostrophes gets one more).
    static func guardFormula(_ text: String) -> String { needsGuard(text) ? "'" + text : text }

    static func unguardFormula(_ text: String) -> String {
        guard text.unicodeScalars.first == "'" else { return text }
        let rest = String(text.unicodeScalars.dropFirst())
        return needsGuard(rest) ? rest : text
    }

    /// A record and the 1-based line it starts on.
    struct Record {
        var line: Int
        var fields: [String]
    }

    struct ParseError: Error, CustomStringConvertible {
        var line: Int
        var reason: String
        var description: String { "line \(line): \(reason)" }
    }

    static func parse(_ text: String) throws(ParseError) -> [Record] {
        var records: [Record] = []
        var fields: [String] = []
        var field = ""
        var inQuotes = false
        var line = 1
        var recordLine = 1
        var atFieldStart = true
        var iterator = Array(text.unicodeScalars)[...]
        while let c = iterator.popFirst() {
            if inQuotes {
                if c == "\"" {
                    if iterator.first == "\"" {
                        field.unicodeScalars.append("\"")
                        iterator = iterator.dropFirst()
                    } else {
                        inQuotes = false
                    }
                } else {
                    if c == "\n" { line += 1 }
                    field.unicodeScalars.append(c)
                }
                continue
            }
            switch c {
            case "\"" where atFieldStart:
                inQuotes = true
                atFieldStart = false
            case "\"":
                throw ParseError(line: line, reason: "a quote inside an unquoted field")
            case ",":
                fields.append(field)
                field = ""
                atFieldStart = true
            case "\r" where iterator.first == "\n":
                // The CR of a CRLF line end; a CR anywhere else is data (a writer quotes it).
                continue
            case "\n":
                fields.append(field)
                if !(fields.count == 1 && fields[0].isEmpty) { records.append(Record(line: recordLine, fields: fields)) }
                fields = []
                field = ""
                atFieldStart = true
                line += 1
                recordLine = line
            default:
                field.unicodeScalars.append(c)
                atFieldStart = false
            }
        }
        if inQuotes { throw ParseError(line: recordLine, reason: "a quoted field is not closed") }
        if !field.isEmpty || !fields.isEmpty {
            fields.append(field)
            records.append(Record(line: recordLine, fields: fields))
        }
        return records
    }
}
