import FieldSyncCore
import FieldSyncTestSupport
import Foundation
import Testing

@testable import FieldSyncCLI

/// Text output cannot be turned against the reader: escape sequences and bidi overrides that a
/// hostile insider writes into a record are shown visibly; right-to-left text prints as it is.
@Suite struct TerminalTextTests {
    static let hostileTitle = "Shelling\u{1B}[2J\u{1B}]0;owned\u{07} \u{202E}dlrow\u{202C} \u{9B}31m قصف السوق\u{7F}"

    @Test func controlCharactersAndBidiOverridesAreShownVisibly() {
        let shown = TerminalText.visible(Self.hostileTitle)
        #expect(!shown.unicodeScalars.contains { TerminalText.isHidden($0) })
        #expect(
            shown.contains("\\u{1B}[2J") && shown.contains("\\u{202E}dlrow\\u{202C}") && shown.contains("\\u{9B}31m")
                && shown.contains("\\u{7F}"))
        #expect(shown.contains("قصف السوق"), "Arabic prints as it is")
        #expect(TerminalText.visible("Al-Mukhtariya, المختارية") == "Al-Mukhtariya, المختارية")
    }

    @Test func everyTextCommandShowsThemVisiblyAndJSONStaysExact() async throws {
        let w = try CLIWorkspace("terminal")
        try await w.initReplica("rima")
        let id = try await w.add("rima", "--title", Self.hostileTitle, "--set", "narrative=line one\nline two\u{1B}[1A")
        try await w.ok("rima", "edit", id, "--set", "casualties.killed=3")
        for arguments in [["list"], ["show", id], ["show", id, "--history"], ["status"]] {
            let result = try await w.ok("rima", arguments)
            #expect(!result.stdout.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x202E || $0.value == 0x9B }, "\(arguments)")
        }
        let shown = try await w.ok("rima", "show", id).stdout
        #expect(shown.contains("\\u{1B}[2J"))
        #expect(shown.contains("line one\\u{A}line two"), "a newline inside a value cannot fake a line of output")
        #expect(shown.contains("قصف السوق"))
        let json = try await w.show("rima", id)
        #expect(json["fields"]?["title"]?.stringValue == Self.hostileTitle, "--json is exact")
        // An error quoting input gets the same treatment.
        let bad = try await w.run("rima", ["edit", id, "--set", "nosuch.\u{1B}[2J=1"])
        #expect(bad.status == 1, "\(bad)")
        #expect(bad.stderr.contains("\\u{1B}[2J"), "\(bad)")
        #expect(!bad.stderr.unicodeScalars.contains { $0.value == 0x1B }, "\(bad)")
        // A hostile field path, in conflict: history, conflicts and the path heading show it visibly.
        try await w.initReplica("omar")
        try await w.exchange("rima", "omar")
        try await w.ok("rima", "edit", id, "--set", "custom.\u{1B}]0;owned\u{07}=one")
        try await w.ok("omar", "edit", id, "--set", "custom.\u{1B}]0;owned\u{07}=two")
        try await w.exchange("omar", "rima")
        for arguments in [["show", id, "--history"], ["conflicts"], ["show", id]] {
            let result = try await w.ok("rima", arguments)
            #expect(result.stdout.contains("custom.\\u{1B}]0;owned\\u{7}"), "\(arguments): \(result.stdout)")
            #expect(!result.stdout.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 }, "\(arguments)")
        }
    }
}
