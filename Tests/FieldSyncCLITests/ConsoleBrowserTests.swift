import FieldSyncTestSupport
import Foundation
import Testing

/// `fieldsync console` in headless Chromium (Scripts/console-browser-test.py, Selenium and axe-core):
/// a documenter adds and edits an incident with an Arabic title, a bundle brings a conflict, it is
/// resolved with a note in the page, and `show --history` holds the resolution signed by this
/// replica; every page passes axe with no serious or critical violation. The browser and its
/// driver come from Debian (`.ci/run` installs them); when they are missing the test fails, saying so.
@Suite struct ConsoleBrowserTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Runs a command to its end on a thread of its own; output goes through files (no pipe to fill).
    static func run(_ arguments: [String], in dir: TemporaryDirectory, name: String) async throws -> (
        status: Int32, stdout: String, stderr: String
    ) {
        try await DedicatedThread.run {
            let out = dir.file("\(name).out")
            let err = dir.file("\(name).err")
            _ = FileManager.default.createFile(atPath: out, contents: nil)
            _ = FileManager.default.createFile(atPath: err, contents: nil)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = arguments
            process.currentDirectoryURL = root
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
            try process.run()
            process.waitUntilExit()
            return (
                process.terminationStatus, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
                (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
            )
        }
    }

    @Test(.timeLimit(.minutes(10))) func addEditConflictAndResolveInARealBrowser() async throws {
        let dir = try TemporaryDirectory("console-browser")
        defer { dir.remove() }
        let setup = try await Self.run(["bash", "Scripts/console-browser-setup.sh"], in: dir, name: "setup")
        try #require(setup.status == 0, "the browser tests cannot start: \(setup.stderr)")
        let python = setup.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let screenshots =
            ProcessInfo.processInfo.environment["FIELDSYNC_CONSOLE_SCREENSHOTS"]
            ?? Self.root.appendingPathComponent(".build/console-screenshots").path
        for name in ["list", "incident", "conflict-review", "chart"] {
            try? FileManager.default.removeItem(atPath: "\(screenshots)/\(name).png")
        }
        let binary = try FieldSyncBinary()
        let result = try await Self.run(
            [
                python, "Scripts/console-browser-test.py", "--fieldsync", binary.url.path, "--workdir", dir.path, "--screenshots",
                screenshots,
            ],
            in: dir, name: "browser")
        #expect(result.status == 0, "\(result.stderr.suffix(3000))")
        let summary = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        #expect(summary?["record"] as? String != nil, "\(result.stdout)")
        for name in ["list", "incident", "conflict-review", "chart"] {
            let size = (try? FileManager.default.attributesOfItem(atPath: "\(screenshots)/\(name).png")[.size] as? Int) ?? 0
            #expect(size > 10_000, "screenshot \(name).png is \(size) bytes")
        }
    }
}
