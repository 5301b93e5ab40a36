import FieldSyncCore
import Foundation
import Testing

/// Loads the conformance vectors in `Protocol/vectors/` so that the spec and the code cannot drift apart.
@Suite struct ConformanceVectorTests {
    static let vectors = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Protocol/vectors")

    static func load(_ name: String) throws -> [JSONValue] {
        let data = try Data(contentsOf: vectors.appendingPathComponent(name))
        return try #require(try JSONValue(parsing: Array(data))["cases"]?.arrayValue)
    }

    @Test func versionVectorComparisons() throws {
        let cases = try Self.load("version-vectors.json")
        #expect(cases.count >= 5)
        for c in cases {
            let a = try VersionVector(json: try #require(c["a"]), at: "a")
            let b = try VersionVector(json: try #require(c["b"]), at: "b")
            #expect(a.compare(b).rawValue == c["order"]?.stringValue, "\(c)")
        }
    }

    @Test func canonicalJSON() throws {
        let cases = try Self.load("canonical-json.json")
        #expect(cases.count >= 5)
        for c in cases {
            let input = try #require(c["input"]?.stringValue)
            let expected = try #require(c["canonical"]?.stringValue)
            #expect(try JSONValue(parsing: input).canonicalText == expected, "\(input)")
            // Canonical text is a fixed point.
            #expect(try JSONValue(parsing: expected).canonicalText == expected)
        }
    }

    @Test func historiesMergeToTheExpectedState() throws {
        let cases = try Self.load("histories.json")
        #expect(cases.count >= 5)
        for c in cases {
            let name = c["name"]?.stringValue ?? "?"
            let revisions = try #require(c["revisions"]?.arrayValue).map { try Revision(json: $0) }
            for revision in revisions {
                for op in revision.operations { try IncidentSchema.validate(op) }
                // The vectors' revision text is already canonical: re-encoding gives the same bytes.
            }
            // `admins`, when given, are the node ids that may resolve (an enrolled replica's view);
            // absent, everyone may (an unenrolled replica's).
            let authority: ResolutionAuthority =
                c["admins"]?.arrayValue.map { .admins(Set($0.compactMap { $0.stringValue.flatMap(NodeID.init) })) } ?? .everyone
            // In the given order, and in reverse-compatible causal orders, the state is the same.
            var replica = ReplicaState(authority: authority)
            for revision in revisions { try replica.receive(revision) }
            var other = ReplicaState(authority: authority)
            var pending = revisions.reversed() as [Revision]
            while !pending.isEmpty {
                let index = try #require(pending.firstIndex { other.knowledge.delivery(of: $0) == .ready }, "\(name): stuck")
                try other.receive(pending.remove(at: index))
            }
            #expect(other.canonicalState == replica.canonicalState, "\(name)")
            let expected = try #require(c["expected"]?.objectValue)
            #expect(Set(expected.keys) == Set(replica.records.keys.map(\.rawValue)), "\(name)")
            for (idText, want) in expected {
                let recordID = try #require(RecordID(idText))
                let state = try #require(replica.records[recordID])
                #expect(JSONValue.bool(state.isDeleted) == want["deleted"], "\(name): deleted")
                #expect(state.fields == want["fields"], "\(name): fields")
                let conflicts = JSONValue.array(
                    state.conflicts.map { conflict in
                        ["path": .string(conflict.path), "values": .array(conflict.candidates.map { $0.value ?? .null })]
                    })
                #expect(conflicts == want["conflicts"], "\(name): conflicts")
            }
        }
    }
}
