import Foundation
import Testing

@testable import FieldSyncCore

/// `RecordState.storedText`, the form stores write: a write log's run whose last write is one of
/// the register's candidates names it instead of holding its value again, and it reads back as the
/// same state; the canonical form that stores wrote before still reads.
@Suite struct StoredStateTests {
    static let narrative = String(repeating: "Witnesses saw the convoy stop at the bridge. ", count: 20)

    static func reported() -> RecordState {
        var state = RecordState(id: Fixture.record)
        state.apply(
            Fixture.revision(
                Fixture.nodeA, 1,
                [.set(path: "title", value: "Raid at the market at dawn"), .set(path: "narrative", value: .string(narrative))]))
        return state
    }

    @Test func aValueWrittenOnceIsStoredOnce() throws {
        let state = Self.reported()
        let stored = state.storedText
        #expect(state.canonicalText.components(separatedBy: Self.narrative).count == 3, "the canonical form holds it twice")
        #expect(stored.components(separatedBy: Self.narrative).count == 2, "the stored form holds it once")
        #expect(stored.contains(#"{"candidate":true,"first":1,"last":1,"node":"aaaaaaaaaaaaaaa1"}"#))
        #expect(stored.utf8.count < state.canonicalText.utf8.count - Self.narrative.utf8.count)
        #expect(try RecordState(json: JSONValue(parsing: stored)) == state)
        // Canonical JSON itself: parsing and re-encoding gives the same bytes.
        #expect(try JSONValue(parsing: stored).canonicalText == stored)
    }

    @Test func onlyARunWhoseLastWriteIsACandidateWithItsValueIsNamed() throws {
        var state = Self.reported()
        // B, having seen A's write, writes another title: A's run no longer ends at a candidate.
        state.apply(
            Fixture.revision(
                Fixture.nodeB, 1, [.set(path: "title", value: "Raid on the market")], context: Fixture.vector((Fixture.nodeA, 1))))
        // A clears the narrative: a run without a value is written as it is.
        state.apply(
            Fixture.revision(Fixture.nodeA, 2, [.unset(path: "narrative")], context: Fixture.vector((Fixture.nodeA, 1), (Fixture.nodeB, 1)))
        )
        let stored = state.storedText
        #expect(try RecordState(json: JSONValue(parsing: stored)) == state)
        #expect(
            stored.contains(#""first":1,"last":1,"node":"aaaaaaaaaaaaaaa1","value":"Raid at the market at dawn""#),
            "A's superseded title keeps its value")
        #expect(stored.contains(#"{"candidate":true,"first":1,"last":1,"node":"bbbbbbbbbbbbbbb2"}"#))
        #expect(stored.components(separatedBy: Self.narrative).count == 2, "A's cleared narrative stays in its log, once")
    }

    @Test func theCanonicalFormStoresWroteBeforeStillReads() throws {
        let state = Self.reported()
        #expect(try RecordState(json: JSONValue(parsing: state.canonicalText)) == state)
        #expect(state.isStored(as: state.canonicalText))
        #expect(state.isStored(as: state.storedText))
        #expect(!state.isStored(as: state.storedText.replacingOccurrences(of: "Raid", with: "Riot")))
    }

    @Test(arguments: [
        (#"{"candidate":true,"first":1,"last":2,"node":"aaaaaaaaaaaaaaa1"}"#, "names a candidate the register does not hold"),
        (#"{"candidate":true,"first":1,"last":1,"node":"bbbbbbbbbbbbbbb2"}"#, "names a candidate the register does not hold"),
        (#"{"candidate":true,"first":1,"last":1,"node":"aaaaaaaaaaaaaaa1","value":"Raid at the market at dawn"}"#, "malformed run"),
        (#"{"candidate":false,"first":1,"last":1,"node":"aaaaaaaaaaaaaaa1"}"#, "malformed run"),
        (#"{"candidate":1,"first":1,"last":1,"node":"aaaaaaaaaaaaaaa1"}"#, "malformed run"),
    ])
    func aRunNamingNoCandidateIsRefused(run: String, message: String) throws {
        let stored = Self.reported().storedText
        let named = #"{"candidate":true,"first":1,"last":1,"node":"aaaaaaaaaaaaaaa1"}"#
        #expect(stored.contains(named))
        // Replace the title's run (the first register in key order is narrative, so change the last one).
        let range = try #require(stored.range(of: named, options: .backwards))
        let altered = stored.replacingCharacters(in: range, with: run)
        let parsed = try JSONValue(parsing: altered)
        let problem = #expect(throws: DecodingProblem.self) { try RecordState(json: parsed) }
        #expect(problem?.description.contains(message) == true, "\(String(describing: problem))")
    }

    @Test func aShortTextIsWrittenAsItIs() throws {
        var state = RecordState(id: Fixture.record)
        state.apply(Fixture.revision(Fixture.nodeA, 1, [.set(path: "title", value: "Raid"), .set(path: "casualties.killed", value: 3)]))
        #expect(state.storedText == state.canonicalText, "the marker would not be shorter than these values")
    }

    @Test func aClearedCandidateIsNeverNamed() throws {
        var state = Self.reported()
        state.apply(Fixture.revision(Fixture.nodeA, 2, [.unset(path: "title")], context: Fixture.vector((Fixture.nodeA, 1))))
        let stored = state.storedText
        #expect(try RecordState(json: JSONValue(parsing: stored)) == state)
        #expect(stored.contains(#"{"first":2,"last":2,"node":"aaaaaaaaaaaaaaa1"}"#), "the clearing run is written as it is")
    }
}
