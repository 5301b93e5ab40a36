import Testing

@testable import FieldSyncCore

/// EDTF level 0/1 validation: what `occurred.start` / `occurred.end` accept and reject.
@Suite struct EDTFTests {
    @Test(arguments: [
        // Level 0 dates.
        "2025", "0000", "9999", "2025-03", "2025-12", "2025-03-07", "2025-01-31", "2025-04-30",
        // Leap years in the proleptic Gregorian calendar.
        "2024-02-29", "2000-02-29", "0000-02-29", "2025-02-28",
        // Qualifiers.
        "2025-03-07~", "2025-03?", "2025%", "2025-03-07?",
        // Unspecified digits from the right.
        "202X", "20XX", "2025-XX", "2025-03-XX", "2025-XX-XX", "2025-02-XX~",
        // Seasons.
        "2025-21", "2025-24", "2025-22?",
        // Intervals, closed, open and unknown.
        "2025-03-06/2025-03-08", "2025-03-07/2025-03-07", "1964/2008", "2004-02-01/2005-02", "2005/2006-02",
        "2025-03/2025-03-31", "2025-03-06/..", "../2025-03-08", "/2025-03-08", "2025-03-06/",
        "1984~/2004-06", "1984?/2004%", "202X/2025-03", "2025-21/2025-23",
    ])
    func acceptsValid(_ text: String) {
        #expect(EDTF.problem(in: text) == nil)
    }

    @Test(arguments: [
        "", " ", " 2025", "2025-03-07 ", "2025 03",
        "07/03/2025", "2025-3-7", "2025-03-7", "25", "20250", "2025-03-07T10:00", "2025-03-07T10:00:00Z",
        "March 2025", "2025-13", "2025-00", "2025-02-30", "2025-02-29", "1900-02-29", "2025-04-31", "2025-03-00",
        "2025-03-32", "2025-20", "2025-25", "2025-21-01", "-2025", "Y170000002", "+2025", "2025-", "2025-03-",
        "2025-03-07-01", "2025-03-07~~", "2025-03-07?~", "~2025", "2025~-03", "?",
        "X025", "2X25", "2X2X", "XXXX", "202X-03", "20XX-XX", "2025-X3", "2025-1X", "2025-XX-07", "2025-03-3X", "202x",
        "/", "../..", "/..", "../", "..", "2025/2026/2027", "2025-03-08/2025-03-06", "2026/2025", "2025-04/2025-03-31",
        "2025-03-08~/2025-03-06", "2025/2025-13", "…2025", "２０２５",
    ])
    func rejectsInvalid(_ text: String) throws {
        let reason = try #require(EDTF.problem(in: text))
        #expect(!reason.isEmpty)
    }

    @Test func reasonsNameTheProblem() {
        #expect(EDTF.problem(in: "2025-13") == "month 13 is out of range")
        #expect(EDTF.problem(in: "2025-02-29") == "day 29 is out of range for 2025-02")
        #expect(EDTF.problem(in: "2025-03-08/2025-03-06") == "the start 2025-03-08 is after the end 2025-03-06")
        #expect(
            EDTF.problem(in: "07/03/2025")
                == "expected a date like 2025-03-07, 2025-03, 2025-03-07~ or 2025-03-06/2025-03-08")
    }
}
