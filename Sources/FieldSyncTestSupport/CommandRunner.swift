import FieldSyncCore
import Foundation

/// The outcome of running the built `fieldsync` binary.
public struct CommandResult: Sendable, CustomStringConvertible {
    public var status: Int32
    public var stdout: String
    public var stderr: String

    public init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }

    /// stdout parsed as JSON (fails the caller's expectation when it is not JSON).
    public func json() throws -> JSONValue { try JSONValue(parsing: stdout) }

    public var description: String { "exit \(status)\nstdout: \(stdout)\nstderr: \(stderr)" }
}

/// Runs the built `fieldsync` executable, black-box, with a given replica file.
public struct FieldSyncBinary: Sendable {
    public let url: URL

    /// Finds `fieldsync` beside the test bundle (SwiftPM builds it with the tests).
    public init() throws {
        var candidates: [URL] = []
        if let executable = Bundle.main.executableURL {
            candidates.append(executable.deletingLastPathComponent().appendingPathComponent("fieldsync"))
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(root.appendingPathComponent(".build/debug/fieldsync"))
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw CLIBinaryMissing(searched: candidates.map(\.path))
        }
        url = found
    }

    /// Runs `fieldsync ARGS` and waits for it on a ``DedicatedThread``, never on a shared pool's
    /// thread (an in-process server in the same test run needs those). `store` becomes `--store`.
    public func run(_ arguments: [String], store: String? = nil, stdin: String? = nil, environment: [String: String] = [:]) async throws
        -> CommandResult
    {
        try await DedicatedThread.run { try runBlocking(arguments, store: store, stdin: stdin, environment: environment) }
    }

    /// Runs `fieldsync ARGS` on the calling thread and waits for it.
    public func runBlocking(_ arguments: [String], store: String? = nil, stdin: String? = nil, environment: [String: String] = [:]) throws
        -> CommandResult
    {
        let process = Process()
        process.executableURL = url
        process.arguments = arguments + (store.map { ["--store", $0] } ?? [])
        var env = ProcessInfo.processInfo.environment
        env["FIELDSYNC_STORE"] = nil
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let input = Pipe()
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try? input.fileHandleForWriting.close()
        // Read both pipes before waiting so a large output cannot block the child.
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return CommandResult(
            status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }
}

public struct CLIBinaryMissing: Error, CustomStringConvertible {
    public var searched: [String]
    public var description: String {
        "the fieldsync binary was not found (run `swift build` first); looked in \(searched.joined(separator: ", "))"
    }
}
