import Testing

@testable import FieldSyncCore

/// Fixed identities and builders shared by the unit tests.
enum Fixture {
    static let nodeA = NodeID("aaaaaaaaaaaaaaa1")!
    static let nodeB = NodeID("bbbbbbbbbbbbbbb2")!
    static let nodeC = NodeID("ccccccccccccccc3")!
    static let record = RecordID("01890a5d-ac96-774b-bcce-b302099a8057")!
    static let otherRecord = RecordID("01890a5d-ac96-774b-bcce-b302099a8058")!

    static func vector(_ entries: (NodeID, UInt64)...) -> VersionVector {
        VersionVector(Dictionary(entries, uniquingKeysWith: { _, last in last }))
    }

    static func revision(
        _ node: NodeID, _ counter: UInt64, record: RecordID = Fixture.record, kind: Revision.Kind = .put,
        _ operations: [FieldOperation] = [], context: VersionVector = VersionVector(), author: String = "tester",
        time: Int64 = 1_700_000_000_000, note: String? = nil, signature: String? = nil
    ) -> Revision {
        Revision(
            dot: Dot(node: node, counter: counter), record: record, kind: kind, operations: operations,
            context: context, author: author, time: time, note: note, signature: signature)
    }
}

/// Parses JSON text that the test itself wrote; fails the test if it does not parse.
func json(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> JSONValue {
    try #require(try? JSONValue(parsing: text), "fixture JSON does not parse: \(text)", sourceLocation: sourceLocation)
}

extension RecordState {
    /// As on an unenrolled replica, where every revision may resolve.
    @discardableResult
    mutating func apply(_ revision: Revision) -> Bool { apply(revision, authority: .everyone) }

    func pathsSettled(by revision: Revision) -> [String] { pathsSettled(by: revision, authority: .everyone) }
}
