import FieldSyncTestSupport
import Foundation
import Testing

/// The runnable walkthroughs in Examples/ keep working: each exits 0 only when all its expectations held.
@Suite struct ExampleScriptTests {
    static let examples = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Examples")

    @Test(arguments: ["coastal-walkthrough.sh", "usb-bundle-exchange.sh"])
    func exampleRunsToTheEnd(script: String) async throws {
        let binary = try FieldSyncBinary()
        let result: (status: Int32, output: String) = try await DedicatedThread.run {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["bash", Self.examples.appendingPathComponent(script).path]
            var environment = ProcessInfo.processInfo.environment
            environment["FIELDSYNC"] = binary.url.path
            environment["FIELDSYNC_STORE"] = nil
            process.environment = environment
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            try process.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, output)
        }
        #expect(result.status == 0, "\(result.output)")
        #expect(!result.output.contains("FAILED"))
    }
}
