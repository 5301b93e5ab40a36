import FieldSyncCore
import FieldSyncTestSupport
import Foundation
import Testing

/// The README's quickstart, run as a newcomer runs it: a fresh `HOME` and `XDG_DATA_HOME`, no
/// `FIELDSYNC_STORE`, no `--store`, the README's own command lines in the README's order.
@Suite(.serialized) struct QuickstartTests {
    /// The shell lines of the README's two quickstart blocks, continuation lines joined and trailing
    /// comments dropped. The test fails when the README differs, so both change together.
    static let serverBlock = [
        "swift test",
        "swift run fieldsync serve",
    ]
    static let newcomerBlock = [
        "swift build && alias fieldsync=$PWD/.build/debug/fieldsync",
        "fieldsync server add-user amira --role admin",
        "fieldsync server add-user rima --role documenter",
        "fieldsync init --name \"rima\"",
        "fieldsync unlock --for 1h",
        "fieldsync add --title \"Summary executions near the bakery\" --occurred 2025-03-07~ --place \"Al-Mukhtariya\" --governorate Latakia --set casualties.killed=12 --set violations+=summary-execution --set location.country=SY",
        "fieldsync list",
        "fieldsync show 0193a2 --history",
        "fieldsync enroll --server http://127.0.0.1:8080 --code CODE",
        "fieldsync sync",
        "fieldsync lock",
    ]

    @Test func theReadmeQuickstartIsTheOneThisTestRuns() throws {
        let blocks = try Self.quickstartBlocks()
        #expect(blocks.count >= 2)
        #expect(blocks.first == Self.serverBlock)
        #expect(blocks.dropFirst().first == Self.newcomerBlock)
    }

    @Test func theReadmeQuickstartWorksOnAFreshMachine() async throws {
        let binary = try FieldSyncBinary()
        let home = try TemporaryDirectory("quickstart-home")
        let dataHome = try TemporaryDirectory("quickstart-data")
        defer {
            home.remove()
            dataHome.remove()
        }
        let runtime = try TemporaryDirectory("quickstart-runtime")
        defer { runtime.remove() }
        // The passphrase a newcomer types at `init` and `unlock`: the test has no terminal, so it
        // comes from a file for those two lines only; every later line must get the key from the agent.
        let passphraseFile = runtime.file("passphrase")
        try "a long passphrase only rima knows\n".write(toFile: passphraseFile, atomically: true, encoding: .utf8)
        let environment = ["HOME": home.path, "XDG_DATA_HOME": dataHome.path, "XDG_RUNTIME_DIR": runtime.path]
        let typing = environment.merging(["FIELDSYNC_PASSPHRASE_FILE": passphraseFile]) { $1 }
        let folder = dataHome.file("fieldsync")
        let serverStore = (folder as NSString).appendingPathComponent("server.sqlite")
        let replicaStore = (folder as NSString).appendingPathComponent("replica.sqlite")

        func words(_ line: String) -> [String] {
            let all = Self.shellWords(line)
            #expect(all.first == "fieldsync", "\(line)")
            return Array(all.dropFirst())
        }
        func run(_ line: String, substituting substitutions: [String: String] = [:], typing passphrase: Bool = false) async throws
            -> CommandResult
        {
            let arguments = words(line).map { substitutions[$0] ?? $0 }
            let result = try await binary.run(arguments, environment: passphrase ? typing : environment)
            #expect(result.status == 0, "\(line): \(result)")
            return result
        }

        // `swift run fieldsync serve`: the default port, the default store, both printed.
        let serveLine = try #require(Self.serverBlock.last)
        #expect(serveLine.hasPrefix("swift run fieldsync "))
        let server = try await ServerProcess.start(
            binary: binary, arguments: Self.shellWords(serveLine).dropFirst(3).map { $0 }, environment: environment)
        #expect(server.url == "http://127.0.0.1:8080", "the README promises port 8080: \(server.log)")
        #expect(server.log.contains("created the store \(serverStore)"), "\(server.log)")
        #expect(server.log.contains("(store \(serverStore))"), "\(server.log)")
        #expect(FileManager.default.fileExists(atPath: serverStore))

        let lines = Self.newcomerBlock.dropFirst()  // the first builds the binary and aliases it
        var step = lines.makeIterator()

        let admin = try await run(step.next()!)
        #expect(admin.stdout.contains("account amira (admin)"), "\(admin)")
        let documenter = try await run(step.next()!)
        #expect(documenter.stdout.contains("account rima (documenter)"), "\(documenter)")
        let code = try #require(documenter.stdout.split(separator: "\n").last.map(String.init))
        #expect(!FileManager.default.fileExists(atPath: replicaStore), "add-user must not create the replica")

        let created = try await run(step.next()!, typing: true)
        #expect(created.stdout.contains("Created replica \(replicaStore) for rima"), "\(created)")
        #expect(created.stdout.contains("encryption: passphrase"), "\(created)")
        let unlocked = try await run(step.next()!, typing: true)
        #expect(unlocked.stdout.contains("unlocked \(replicaStore) for 1h"), "\(unlocked)")

        let added = try await run(step.next()!)
        let id = added.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(RecordID(id) != nil, "add prints the new id: \(added)")

        let listed = try await run(step.next()!)
        #expect(listed.stdout.contains("Summary executions near the bakery"), "\(listed)")

        let shown = try await run(step.next()!, substituting: ["0193a2": String(id.prefix(6))])
        #expect(shown.stdout.contains(id), "\(shown)")
        #expect(shown.stdout.contains("casualties.killed"), "\(shown)")
        #expect(shown.stdout.contains("history (1 revision"), "\(shown)")

        let enrolled = try await run(step.next()!, substituting: ["CODE": code])
        #expect(enrolled.stdout.contains("enrolled with http://127.0.0.1:8080 as rima (documenter)"), "\(enrolled)")

        let synced = try await run(step.next()!)
        #expect(synced.stdout.contains("pushed 1, pulled 0"), "\(synced)")
        let locked = try await run(step.next()!)
        #expect(locked.stdout.contains("the agent forgot its key"), "\(locked)")
        #expect(step.next() == nil)
        let afterLock = try await binary.run(["list"], environment: environment)
        #expect(afterLock.status == 1 && afterLock.stderr.contains("encrypted and locked"), "\(afterLock)")

        #expect(await server.stop() == 0)
        let central = try await binary.run(["status", "--json", "--store", serverStore])
        #expect(try central.json()["revisions"] == 1, "\(central)")
        // Nothing was written outside the data folder or into the working directory.
        #expect(try FileManager.default.contentsOfDirectory(atPath: home.path).isEmpty)
    }

    @Test func withoutXDGDataHomeTheDefaultsLiveUnderHome() async throws {
        let binary = try FieldSyncBinary()
        let home = try TemporaryDirectory("quickstart-home")
        defer { home.remove() }
        let environment = ["HOME": home.path, "XDG_DATA_HOME": ""]
        let folder = home.file(".local/share/fieldsync")
        let added = try await binary.run(["server", "add-user", "amira", "--role", "admin"], environment: environment)
        #expect(added.status == 0, "\(added)")
        #expect(added.stderr.contains("created the central node's store \(folder)/server.sqlite"), "\(added)")
        let again = try await binary.run(["server", "add-user", "omar", "--role", "documenter"], environment: environment)
        #expect(again.status == 0 && again.stderr.isEmpty, "a second add-user opens the same store: \(again)")
        let created = try await binary.run(["init", "--name", "rima", "--plaintext"], environment: environment)
        #expect(created.stdout.contains("Created replica \(folder)/replica.sqlite"), "\(created)")
        let status = try await binary.run(["status", "--json"], environment: environment)
        #expect(try status.json()["revisions"] == 0, "\(status)")
    }

    @Test(arguments: [
        (["photograph", "--help"], "photograph"), (["photograph"], "photograph"), (["bundle", "nosuch"], "nosuch"),
        (["users", "frob", "--help"], "frob"), (["--store", "x.sqlite", "attachmnt", "--help"], "attachmnt"),
    ])
    func anUnknownSubcommandIsAUsageError(arguments: [String], unknown: String) async throws {
        let result = try await FieldSyncBinary().run(arguments)
        #expect(result.status == 2, "\(result)")
        #expect(result.stdout.isEmpty, "no help page: \(result)")
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(result)")
        #expect(result.stderr.contains("unknown subcommand '\(unknown)'"), "\(result)")
    }

    @Test func knownSubcommandsStillShowTheirHelp() async throws {
        for arguments in [["--help"], ["help"], ["bundle", "--help"], ["help", "sync"], ["sync", "--help"]] {
            let result = try await FieldSyncBinary().run(arguments)
            #expect(result.status == 0, "\(arguments): \(result)")
            #expect(result.stdout.contains("USAGE"), "\(arguments): \(result)")
        }
    }

    // MARK: - Reading the README

    static func quickstartBlocks() throws -> [[String]] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let start = try #require(readme.range(of: "## Quickstart"))
        let end = readme.range(of: "\n## ", range: start.upperBound..<readme.endIndex)?.lowerBound ?? readme.endIndex
        var blocks: [[String]] = []
        var current: [String]?
        var pending = ""
        for line in readme[start.upperBound..<end].split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") {
                if let block = current {
                    blocks.append(block)
                    current = nil
                } else if line == "```sh" {
                    current = []
                }
                continue
            }
            guard current != nil else { continue }
            var text = String(line)
            if let comment = text.range(of: " #") { text = String(text[..<comment.lowerBound]) }
            text = text.trimmingCharacters(in: .whitespaces)
            if text.hasSuffix("\\") {
                pending += text.dropLast().trimmingCharacters(in: .whitespaces) + " "
                continue
            }
            let whole = pending + text
            pending = ""
            if !whole.isEmpty { current!.append(whole) }
        }
        return blocks
    }

    /// Splits a command line into words as a POSIX shell would for these lines: blanks separate,
    /// single and double quotes group.
    static func shellWords(_ line: String) -> [String] {
        var words: [String] = []
        var word = ""
        var inWord = false
        var quote: Character?
        for character in line {
            if let open = quote {
                if character == open { quote = nil } else { word.append(character) }
            } else if character == "\"" || character == "'" {
                quote = character
                inWord = true
            } else if character == " " {
                if inWord { words.append(word) }
                word = ""
                inWord = false
            } else {
                word.append(character)
                inWord = true
            }
        }
        if inWord { words.append(word) }
        return words
    }
}
