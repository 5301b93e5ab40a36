import FieldSyncCore
import FieldSyncTestSupport
import Foundation
import Testing

@testable import FieldSyncCLI

/// RFC 4180 in full, and spreadsheet formulas neutralised on export and restored on import.
@Suite struct CSVTests {
    static let values = [
        "plain", "", "a,b", "say \"no\"", "line\nbreak", "carriage\rreturn", "windows\r\nline", "\r\n", " leading", "trailing ",
        "قصف السوق، ١٢ قتيلاً", "=HYPERLINK(\"http://x\",\"click\")", "+1", "-2+3", "@SUM(A1)", "\tTab", "\rCR first",
        "'=already", "''+two", "'plain quote", "-33.51", "12", "-", "=", "'",
    ]

    @Test func everyValueRoundTripsThroughARow() throws {
        for raw in [false, true] {
            let cells = raw ? Self.values : Self.values.map(CSV.guardFormula)
            let records = try CSV.parse(CSV.row(cells) + CSV.row(["x"]))
            #expect(records.count == 2)
            let back = raw ? records[0].fields : records[0].fields.map(CSV.unguardFormula)
            #expect(back == Self.values, "raw: \(raw)")
        }
    }

    @Test func formulaCellsAreGuardedAndNumbersAreNot() {
        for formula in ["=1+1", "+1", "-2+3", "@SUM(A1)", "\tTab", "\rCR", "'=x", "''-y"] {
            #expect(CSV.guardFormula(formula) == "'" + formula, "\(formula)")
        }
        for safe in ["-33.51", "12", "plain", "'plain", "a=b"] {
            #expect(CSV.guardFormula(safe) == safe, "\(safe)")
        }
        // Guarding is undone exactly, and only where it was done.
        for value in Self.values { #expect(CSV.unguardFormula(CSV.guardFormula(value)) == value) }
        #expect(CSV.unguardFormula("'plain quote") == "'plain quote")
    }

    @Test func aCRLFInsideAValueIsQuotedAndKeepsItsRow() throws {
        let row = CSV.row(["a\r\nb", "c"])
        #expect(row == "\"a\r\nb\",c\r\n")
        #expect(try CSV.parse(row).map(\.fields) == [["a\r\nb", "c"]])
    }

    @Test func exportThenImportRestoresExactValuesInBothModes() async throws {
        let w = try CLIWorkspace("csv")
        try await w.initReplica("rima")
        let narratives = ["=HYPERLINK(\"http://evil\",\"open\")", "windows\r\nline ending", "'=looks guarded", " spaced ", "قصف السوق"]
        for (i, narrative) in narratives.enumerated() {
            _ = try await w.add("rima", "--title", "Incident \(i)", "--set", "narrative=\(narrative)")
        }
        for raw in [false, true] {
            let file = w.dir.file("export-\(raw).csv")
            try await w.ok("rima", ["export", "--format", "csv", "--out", file] + (raw ? ["--raw"] : []))
            let text = try String(contentsOfFile: file, encoding: .utf8)
            #expect(text.contains("\"'=HYPERLINK(") != raw, "guarded unless --raw")
            #expect(try CSV.parse(text).count == narratives.count + 1, "one row per incident, CRLF inside a value included")
            let name = "copy-\(raw)"
            try await w.initReplica(name)
            try await w.ok(name, ["import", file] + (raw ? ["--raw"] : []))
            let list = try await w.ok(name, "list", "--json").json()
            let imported = Set((list.arrayValue ?? []).compactMap { $0["fields"]?["narrative"]?.stringValue })
            #expect(imported == Set(narratives), "raw: \(raw): \(imported)")
        }
    }
}
