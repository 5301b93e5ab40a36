import FieldSyncCore
import Testing

/// `IncidentSchema.entryPath(of:)` and `isEntryPath(_:)` scan bytes for dots; they must answer as
/// splitting the path into its parts would, for every path, well-formed or not.
@Suite struct EntryPathTests {
    /// The definitions as the spec states them (RECORD-MODEL: `collection.entry.field`).
    static func referenceEntryPath(_ path: String) -> String? {
        let parts = path.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, IncidentSchema.collections[String(parts[0])] != nil else { return nil }
        return "\(parts[0]).\(parts[1])"
    }

    static func referenceIsEntryPath(_ path: String) -> Bool {
        let parts = path.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 2 && IncidentSchema.collections[String(parts[0])] != nil && IncidentSchema.isEntryID(String(parts[1]))
    }

    /// Every sequence of up to four of these pieces: collections, other names, entry ids valid and
    /// not, empty parts, a combining mark and dots in every position.
    static var paths: [String] {
        let pieces = ["victims", "sources", "title", "casualties", ".", "v1", "V1", "", "é", "\u{301}", "name", "-"]
        var paths: [String] = [""]
        var frontier: [String] = [""]
        for _ in 0..<4 {
            frontier = frontier.flatMap { prefix in pieces.map { prefix + $0 } }
            paths += frontier
        }
        // A combining mark after a dot, or a prepended mark before one, makes one character of it.
        return paths + [
            "victims.v1.name", "victims.v1", "victims..name", "victims.v1.", ".v1.name", "victims.v1.name.x",
            "victims.v1.\u{301}name", "victims.\u{301}x.name", "victims.x\u{600}.name", "victims.v1\u{600}.x",
        ]
    }

    @Test func agreesWithSplittingThePath() {
        let paths = Self.paths
        #expect(paths.count > 10_000)
        for path in paths {
            #expect(IncidentSchema.entryPath(of: path) == Self.referenceEntryPath(path), "entryPath(of: \(path))")
            #expect(IncidentSchema.isEntryPath(path) == Self.referenceIsEntryPath(path), "isEntryPath(\(path))")
        }
        #expect(IncidentSchema.entryPath(of: "victims.v1.name") == "victims.v1")
        #expect(IncidentSchema.isEntryPath("victims.v1"))
        #expect(!IncidentSchema.isEntryPath("victims.V1"))
        #expect(IncidentSchema.entryPath(of: "casualties.killed") == nil)
    }
}
