/// Validation of dates in EDTF (Extended Date/Time Format, ISO 8601-2) levels 0 and 1, as used for
/// `occurred.start` / `occurred.end`.
///
/// Accepts four-digit years 0000-9999 (`2025`, `2025-03`, `2025-03-07`), one trailing qualifier (`?`, `~`, `%`),
/// unspecified digits from the right (`202X`, `20XX`, `2025-XX`, `2025-03-XX`, `2025-XX-XX`), seasons 21-24
/// (`2025-21`), and intervals `A/B` whose sides may be open (`..`) or unknown (empty), but not both.
/// Times, `Y`-prefixed and negative years are not accepted.
public enum EDTF {
    /// Returns nil when `text` is a valid EDTF level-0/1 date or interval, otherwise a short human reason
    /// (e.g. "month 13 is out of range", "expected a date like 2025-03-07, 2025-03, 2025-03-07~ or 2025-03-06/2025-03-08").
    public static func problem(in text: String) -> String? {
        do {
            try check(Array(text.utf8))
            return nil
        } catch {
            return error.reason
        }
    }

    private static let expected = "expected a date like 2025-03-07, 2025-03, 2025-03-07~ or 2025-03-06/2025-03-08"

    private struct Problem: Error {
        let reason: String
        init(_ reason: String) { self.reason = reason }
    }

    /// A parsed date; `month` and `day` are nil when absent or unspecified (`XX`).
    private struct ParsedDate {
        var text: String
        var year: Int?  // nil when the year has X digits
        var month: Int?  // 1-12, or 21-24 for a season
        var day: Int?
        var precision: Int  // 1 year, 2 month, 3 day
        /// No unspecified digits and no season, so it can be ordered against another concrete date.
        var isConcrete: Bool
    }

    private static func check(_ bytes: [UInt8]) throws(Problem) {
        if bytes.isEmpty { throw Problem("the date is empty") }
        if bytes.contains(where: { $0 == 0x20 || (0x09...0x0D).contains($0) }) {
            throw Problem("a date must not contain whitespace")
        }
        let sides = bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        switch sides.count {
        case 1:
            _ = try parseDate(sides[0])
        case 2:
            let start = try parseEnd(sides[0])
            let end = try parseEnd(sides[1])
            guard let start, let end else {
                if start == nil && end == nil { throw Problem("an interval needs a date on at least one side") }
                return
            }
            if start.isConcrete, end.isConcrete, isAfter(start, end) {
                throw Problem("the start \(start.text) is after the end \(end.text)")
            }
        default:
            throw Problem(expected)
        }
    }

    /// One side of an interval; nil for an open (`..`) or unknown (empty) end.
    private static func parseEnd(_ bytes: ArraySlice<UInt8>) throws(Problem) -> ParsedDate? {
        if bytes.isEmpty || bytes.elementsEqual("..".utf8) { return nil }
        return try parseDate(bytes)
    }

    private static func parseDate(_ bytes: ArraySlice<UInt8>) throws(Problem) -> ParsedDate {
        var body = bytes
        if let last = body.last, isQualifier(last) {
            body.removeLast()
            if let previous = body.last, isQualifier(previous) {
                throw Problem("a date takes at most one qualifier (?, ~ or %)")
            }
        }
        let text = String(decoding: body, as: UTF8.self)
        let parts = body.split(separator: UInt8(ascii: "-"), omittingEmptySubsequences: false)
        guard (1...3).contains(parts.count), parts.allSatisfy({ isDigitsOrX($0) }) else { throw Problem(expected) }

        let yearPart = parts[0]
        guard yearPart.count == 4 else { throw Problem(expected) }
        let yearXCount = yearPart.reduce(0) { $0 + ($1 == x ? 1 : 0) }
        var date = ParsedDate(text: text, year: number(yearPart), month: nil, day: nil, precision: parts.count, isConcrete: yearXCount == 0)
        if yearXCount > 0 {
            // Level 1 allows X only as the rightmost one or two digits of a year given alone (202X, 20XX).
            let digits = yearPart.prefix(while: { $0 != x })
            guard digits.count >= 2, yearPart.dropFirst(digits.count).allSatisfy({ $0 == x }) else {
                throw Problem("only the last one or two digits of a year may be X")
            }
            guard parts.count == 1 else { throw Problem("a year with X digits cannot have a month or day") }
            return date
        }

        guard parts.count >= 2 else { return date }
        let monthPart = parts[1]
        guard monthPart.count == 2 else { throw Problem(expected) }
        if let month = number(monthPart) {
            if (21...24).contains(month) {
                guard parts.count == 2 else { throw Problem("a season (21-24) cannot have a day") }
                date.month = month
                date.isConcrete = false
                return date
            }
            guard (1...12).contains(month) else { throw Problem("month \(twoDigits(month)) is out of range") }
            date.month = month
        } else if monthPart.allSatisfy({ $0 == x }) {
            date.isConcrete = false
        } else {
            throw Problem("a month must be two digits or XX")
        }

        guard parts.count == 3 else { return date }
        let dayPart = parts[2]
        guard dayPart.count == 2 else { throw Problem(expected) }
        if let day = number(dayPart) {
            guard let month = date.month, let year = date.year else {
                throw Problem("a day cannot be given when the month is XX")
            }
            let limit = daysIn(month: month, year: year)
            guard (1...limit).contains(day) else {
                throw Problem("day \(twoDigits(day)) is out of range for \(String(decoding: yearPart, as: UTF8.self))-\(twoDigits(month))")
            }
            date.day = day
        } else if dayPart.allSatisfy({ $0 == x }) {
            date.isConcrete = false
        } else {
            throw Problem("a day must be two digits or XX")
        }
        return date
    }

    /// Whether `start` begins after `end` finishes, comparing at the coarser of the two precisions.
    private static func isAfter(_ start: ParsedDate, _ end: ParsedDate) -> Bool {
        let precision = min(start.precision, end.precision)
        let a = [start.year ?? 0, start.month ?? 0, start.day ?? 0].prefix(precision)
        let b = [end.year ?? 0, end.month ?? 0, end.day ?? 0].prefix(precision)
        return b.lexicographicallyPrecedes(a)
    }

    private static let x = UInt8(ascii: "X")

    private static func isQualifier(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "?") || byte == UInt8(ascii: "~") || byte == UInt8(ascii: "%")
    }

    private static func isDigitsOrX(_ part: ArraySlice<UInt8>) -> Bool {
        !part.isEmpty && part.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == x }
    }

    /// The decimal value of an all-digit part, or nil if it contains anything else.
    private static func number(_ part: ArraySlice<UInt8>) -> Int? {
        var value = 0
        for byte in part {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }

    private static func twoDigits(_ value: Int) -> String {
        value < 10 ? "0\(value)" : "\(value)"
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2:
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
            return leap ? 29 : 28
        case 4, 6, 9, 11:
            return 30
        default:
            return 31
        }
    }
}
