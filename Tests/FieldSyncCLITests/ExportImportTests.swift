import FieldSyncCore
import FieldSyncTestSupport
import Foundation
import Testing

/// `export` in JSON, CSV and GeoJSON, and bulk `import`, through the built binary.
@Suite struct ExportImportTests {
    let w: CLIWorkspace
    init() throws { w = try CLIWorkspace("export") }

    static let examples = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Examples")

    /// Two replicas with the example incidents and one conflict between them.
    func twoConflictedReplicas() async throws -> String {
        try await w.initReplica("a")
        try await w.initReplica("b")
        try await w.ok("a", "add", "--from", Self.examples.appendingPathComponent("coastal-incidents.json").path)
        let id = try await w.add(
            "a", "--title", "Raid on Al-Mukhtariya", "--set", "location.lat=35.5", "--set", "location.lon=35.8", "--set",
            "casualties.killed=9")
        try await w.exchange("a", "b")
        try await w.ok("a", "edit", id, "--set", "casualties.killed=12")
        try await w.ok("b", "edit", id, "--set", "casualties.killed=15")
        try await w.exchange("a", "b")
        try await w.exchange("b", "a")
        return id
    }

    func read(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }

    @Test func identicalReplicasExportIdenticalFiles() async throws {
        _ = try await twoConflictedReplicas()
        for (format, args) in [("json", ["--include-history"]), ("csv", []), ("geojson", [])] {
            for name in ["a", "b"] {
                try await w.ok(name, ["export", "--format", format, "--out", w.dir.file("\(name).\(format)")] + args)
            }
            #expect(try read(w.dir.file("a.\(format)")) == read(w.dir.file("b.\(format)")), "\(format)")
        }
        let json = try JSONValue(parsing: try read(w.dir.file("a.json")))
        #expect(json["records"]?.arrayValue?.count == 6)
        #expect(json["records"]?[0]?["history"]?.arrayValue?.isEmpty == false)
    }

    @Test func csvMarksConflictsAndGeoJSONHasTheMappableIncidents() async throws {
        let id = try await twoConflictedReplicas()
        let csv = try await w.ok("a", "export", "--format", "csv").stdout
        let lines = csv.split(separator: "\r\n")
        #expect(lines.count == 7)
        #expect(lines[0].hasPrefix("id,title,narrative,occurred_start"))
        let row = try #require(lines.first { $0.hasPrefix(id) })
        #expect(row.contains("CONFLICT: 12 | 15") || row.contains("CONFLICT: 15 | 12"))
        #expect(row.hasSuffix(",casualties.killed"))
        let geo = try await w.ok("a", "export", "--format", "geojson").json()
        #expect(geo["type"] == "FeatureCollection")
        let features = try #require(geo["features"]?.arrayValue)
        #expect(features.count == 3)
        let raid = try #require(features.first { $0["id"]?.stringValue == id })
        #expect(raid["geometry"]?["coordinates"] == [35.8, 35.5])
        #expect(raid["properties"]?["conflicts"] == ["casualties.killed"])
    }

    @Test func csvRoundTripsThroughImport() async throws {
        _ = try await twoConflictedReplicas()
        try await w.initReplica("c")
        // Conflicted cells must be settled before importing: resolve on "a" first.
        let conflicted = try #require(try await w.ok("a", "list", "--conflicted", "--json").json()[0]?["id"]?.stringValue)
        try await w.ok("a", "resolve", conflicted, "--set", "casualties.killed=13", "--note", "agreed figure")
        try await w.ok("a", "export", "--format", "csv", "--out", w.dir.file("all.csv"))
        let report = try await w.ok("c", "import", w.dir.file("all.csv"), "--json").json()
        #expect(report["imported"] == 6)
        let titles = { (name: String) async throws -> [String] in
            try await w.ok(name, "list", "--json").json().arrayValue!.compactMap { $0["fields"]?["title"]?.stringValue }.sorted()
        }
        #expect(try await titles("c") == titles("a"))
        let baniyas = try #require(
            try await w.ok("c", "list", "--json").json().arrayValue?.first {
                $0["fields"]?["title"]?.stringValue?.contains("Baniyas") == true
            })
        #expect(baniyas["fields"]?["violations"] == ["killing", "looting", "summary-execution"])
    }

    @Test func aBadRowIsNamedByLineAndNothingIsImportedUnlessSkipped() async throws {
        try await w.initReplica("c")
        let file = w.dir.file("in.csv")
        try
            "title,killed,occurred_start,violations\r\nFirst,3,2025-03-07,killing\r\nSecond,-4,2025-03-07,\r\n\"Third, with a comma\",,2025-03,looting; destruction-of-property\r\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        let refused = try await w.run("c", "import", file)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("line 3"))
        #expect(refused.stderr.contains("casualties.killed"))
        #expect(try await w.ok("c", "status", "--json").json()["records"] == 0)
        let report = try await w.ok("c", "import", file, "--skip-invalid", "--json").json()
        #expect(report["imported"] == 2)
        #expect(report["skipped"]?[0]?["location"] == "line 3")
        let titles = try await w.ok("c", "list", "--json").json().arrayValue?.compactMap { $0["fields"]?["title"]?.stringValue }.sorted()
        #expect(titles == ["First", "Third, with a comma"])
        let bad = w.dir.file("bad.csv")
        try "title,weather\r\nx,rain\r\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let unknown = try await w.run("c", "import", bad)
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("unknown column \"weather\""))
    }

    @Test func addFromJSONCanSkipInvalidIncidents() async throws {
        try await w.initReplica("c")
        let file = w.dir.file("in.json")
        try #"[{"title":"Good"},{"title":"Bad","location":{"country":"Syria"}}]"#.write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try await w.run("c", "add", "--from", file).status == 1)
        let result = try await w.ok("c", "add", "--from", file, "--skip-invalid")
        #expect(result.stdout.split(separator: "\n").count == 1)
        #expect(result.stderr.contains("skipped incident 2"))
    }
}
