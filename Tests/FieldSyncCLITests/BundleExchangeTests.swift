import FieldSyncCore
import FieldSyncTestSupport
import Foundation
import Testing

/// Replicas exchanging bundle files in various orders, through the built binary.
@Suite struct BundleExchangeTests {
    let w: CLIWorkspace
    init() throws { w = try CLIWorkspace("bundle") }

    @Test(arguments: [["a", "b", "c"], ["c", "a", "b"], ["b", "c", "a"]])
    func replicasConvergeWhateverTheOrder(order: [String]) async throws {
        for name in ["a", "b", "c"] { try await w.initReplica(name) }
        let id = try await w.add("a", "--title", "Raid in Jableh", "--set", "casualties.killed=5")
        try await w.exchange("a", "b")
        try await w.exchange("a", "c")
        // Concurrent edits: b and c change different fields; a and b change the same field.
        try await w.ok("a", "edit", id, "--set", "casualties.killed=7")
        try await w.ok("b", "edit", id, "--set", "casualties.killed=9", "--set", "narrative=Second team's account")
        try await w.ok("c", "edit", id, "--set", "location.place=Jableh", "--set", "tags+=video")
        for from in order {
            for to in order where to != from { try await w.exchange(from, to) }
        }
        let states = try await w.states(["a", "b", "c"])
        #expect(Set(states).count == 1)
        let record = try await w.show("a", id)
        #expect(record["fields"]?["narrative"] == "Second team's account")
        #expect(record["fields"]?["location"]?["place"] == "Jableh")
        #expect(record["fields"]?["tags"] == ["video"])
        let conflicts = try #require(record["conflicts"]?.arrayValue)
        #expect(conflicts.count == 1)
        #expect(conflicts[0]["path"] == "casualties.killed")
        let values = Set(conflicts[0]["candidates"]?.arrayValue?.compactMap { $0["value"]?.intValue } ?? [])
        #expect(values == [7, 9])
        #expect(try await w.ok("a", "list", "--conflicted", "--json").json().arrayValue?.count == 1)
    }

    @Test func importReportsNewKnownAndConflicts() async throws {
        try await w.initReplica("a")
        try await w.initReplica("b")
        let id = try await w.add("a", "--title", "Shelling")
        try await w.exchange("a", "b")
        try await w.ok("a", "edit", id, "--set", "casualties.injured=4")
        try await w.ok("b", "edit", id, "--set", "casualties.injured=6")
        let file = w.dir.file("a.bundle")
        try await w.ok("a", "bundle", "export", "--out", file)
        let outcome = try await w.ok("b", "bundle", "import", file, "--json").json()
        #expect(outcome["new"] == 1)
        #expect(outcome["known"] == 1)
        #expect(outcome["new_conflicts"] == 1)
        // Importing the same bundle again is harmless.
        let again = try await w.ok("b", "bundle", "import", file, "--json").json()
        #expect(again["new"] == 0)
        #expect(again["new_conflicts"] == 0)
    }

    @Test func exportOnlyWhatThePeerLacks() async throws {
        try await w.initReplica("a")
        try await w.initReplica("b")
        _ = try await w.add("a", "--title", "One")
        try await w.exchange("a", "b")
        _ = try await w.add("a", "--title", "Two")
        let fromB = w.dir.file("from-b.bundle")
        try await w.ok("b", "bundle", "export", "--out", fromB)
        let delta = w.dir.file("delta.bundle")
        #expect(try await w.ok("a", "bundle", "export", "--out", delta, "--lacking", fromB).stdout.contains("wrote 1 revision"))
        try await w.ok("b", "bundle", "import", delta)
        #expect(try await w.state("a") == w.state("b"))
    }

    @Test func tamperedTruncatedAndForeignBundlesAreRejectedWhole() async throws {
        try await w.initReplica("a")
        try await w.initReplica("b")
        _ = try await w.add("a", "--title", "Executions at the farm", "--set", "casualties.killed=4")
        let file = w.dir.file("a.bundle")
        // Plaintext on purpose, also from an encrypted replica: the test edits the JSON.
        try await w.ok("a", "bundle", "export", "--out", file, "--plaintext-bundle")
        let original = try String(contentsOfFile: file, encoding: .utf8)
        let before = try await w.state("b")

        let tampered = w.dir.file("tampered.bundle")
        try original.replacingOccurrences(of: "\"value\":4", with: "\"value\":40").write(
            toFile: tampered, atomically: true, encoding: .utf8)
        let truncated = w.dir.file("truncated.bundle")
        try String(original.prefix(original.count / 2)).write(toFile: truncated, atomically: true, encoding: .utf8)
        let foreign = w.dir.file("foreign.bundle")
        try #"{"hello":"world"}"#.write(toFile: foreign, atomically: true, encoding: .utf8)
        let future = w.dir.file("future.bundle")
        try original.replacingOccurrences(of: "\"protocol\":2", with: "\"protocol\":7").write(
            toFile: future, atomically: true, encoding: .utf8)

        for (path, message) in [
            (tampered, "checksum"), (truncated, "truncated"), (foreign, "not a FieldSync bundle"), (future, "not supported"),
            (w.dir.file("none.bundle"), "cannot read"),
        ] {
            let result = try await w.run("b", "bundle", "import", path)
            #expect(result.status == 1, "\(path)")
            #expect(result.stderr.contains(message), "\(result.stderr)")
            #expect(try await w.state("b") == before)
        }
    }
}
