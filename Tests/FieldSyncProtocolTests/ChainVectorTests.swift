import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore
import FieldSyncTestSupport
import Foundation
import Testing

/// `Protocol/vectors/chains.json`: the hash chain of revision format 2, byte for byte, and what a
/// store does with another history of a node it holds.
@Suite struct ChainVectorTests {
    struct Link {
        var text: String
        var hash: String
        var prev: String?
    }

    static func load() throws -> (history: [Link], forked: [Link], firstDifference: UInt64) {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Protocol/vectors/chains.json")
        let json = try JSONValue(parsing: Array(try Data(contentsOf: url)))
        func links(_ key: String) throws -> [Link] {
            try #require(json[key]?.arrayValue).map { item in
                Link(
                    text: try #require(item["text"]?.stringValue), hash: try #require(item["hash"]?.stringValue),
                    prev: item["prev"]?.stringValue)
            }
        }
        return (try links("history"), try links("forked"), UInt64(try #require(json["first_difference"]?.intValue)))
    }

    @Test func hashesAndPrevMembersMatchTheVectors() throws {
        let vectors = try Self.load()
        for chain in [vectors.history, [vectors.history[0]] + vectors.forked] {
            var previous: String?
            for link in chain {
                let revision = try Revision(json: JSONValue(parsing: link.text))
                #expect(revision.json.canonicalText == link.text, "this build writes the vector's canonical text")
                #expect(RevisionChain.hash(ofText: link.text) == link.hash)
                #expect(revision.previous == link.prev)
                #expect(revision.previous == previous, "each names the hash of the one before it")
                #expect(revision.format == 2)
                previous = link.hash
            }
        }
    }

    @Test func aStoreKeepsTheOtherHistoryAsideAndTheProbeFindsWhereItParts() throws {
        let vectors = try Self.load()
        let dir = try TemporaryDirectory("chains")
        defer { dir.remove() }
        let store = try ReplicaStore.create(at: dir.file("s.sqlite"), name: "Omar", now: 1)
        let history = try vectors.history.map { try Revision(json: JSONValue(parsing: $0.text)) }
        let forked = try vectors.forked.map { try Revision(json: JSONValue(parsing: $0.text)) }
        #expect(try store.receive(history, now: 2).accepted == history.count)
        for (i, link) in vectors.history.enumerated() {
            #expect(try store.chainHash(at: Dot(node: history[0].dot.node, counter: UInt64(i + 1))) == link.hash)
        }
        let outcome = try store.receive(forked, now: 3)
        #expect(outcome.setAside == forked.count && outcome.accepted == 0)
        #expect(outcome.contested == forked.map(\.dot))
        // The first counter where the two histories' hashes differ.
        let other = [vectors.history[0]] + vectors.forked
        let first = vectors.history.indices.first { vectors.history[$0].hash != other[$0].hash }
        #expect(first.map { UInt64($0 + 1) } == vectors.firstDifference)
        // A pushed revision of the forked node itself is refused instead.
        #expect { try store.receive(forked, forks: .refuseFrom(owner: forked[0].dot.node), now: 4) } throws: {
            ($0 as? ProtocolError)?.code == .fork
        }
    }
}
