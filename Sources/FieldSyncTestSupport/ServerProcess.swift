import Foundation

/// `fieldsync serve --port 0` running as a child process; its URL is read from its first line of output.
public final class ServerProcess: @unchecked Sendable {
    // `output` is guarded by `lock`; the process handle is only touched by start and stop.
    let process: Process
    let lock = NSLock()
    var output = ""
    public let url: String

    public var log: String { lock.withLock { output } }
    /// The server's process id (to kill it from a proxy's thread, say).
    public var processIdentifier: Int32 { process.processIdentifier }

    init(process: Process, url: String) {
        self.process = process
        self.url = url
    }

    /// A test that fails before `stop` must not leave the server running.
    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    public static func start(binary: FieldSyncBinary, store: String, extraArguments: [String] = []) async throws -> ServerProcess {
        try await start(binary: binary, arguments: ["serve", "--store", store, "--host", "127.0.0.1", "--port", "0"] + extraArguments)
    }

    /// Runs `fieldsync ARGUMENTS` (a `serve` command line as written) with `environment` added to
    /// this process's, less `FIELDSYNC_STORE`.
    public static func start(binary: FieldSyncBinary, arguments: [String], environment: [String: String] = [:]) async throws
        -> ServerProcess
    {
        let process = Process()
        process.executableURL = binary.url
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["FIELDSYNC_STORE"] = nil
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let (lines, continuation) = AsyncStream<String>.makeStream()
        let holder = OutputHolder()
        // A plain thread doing blocking reads, not a `readabilityHandler`: one full run crashed in
        // libdispatch (`_dispatch_event_loop_drain`) while many servers started and stopped, and a
        // reader thread needs no dispatch source at all.
        let reader = pipe.fileHandleForReading
        let thread = Thread {
            while true {
                let data = reader.availableData
                if data.isEmpty { break }
                let text = String(decoding: data, as: UTF8.self)
                holder.append(text)
                continuation.yield(text)
            }
            continuation.finish()
        }
        thread.start()
        var seen = ""
        for await chunk in lines {
            seen += chunk
            if let range = seen.range(of: #"listening on (http\S+)"#, options: .regularExpression) {
                let url = String(seen[range].dropFirst("listening on ".count))
                let server = ServerProcess(process: process, url: url)
                holder.attach(server)
                return server
            }
        }
        throw ServerDidNotStart(output: seen)
    }

    func append(_ text: String) { lock.withLock { output += text } }

    /// Sends `signal` and waits for the process to exit; returns its exit status.
    public func stop(signal: Int32 = SIGTERM) async -> Int32 {
        kill(process.processIdentifier, signal)
        await DedicatedThread.run { self.process.waitUntilExit() }
        return process.terminationStatus
    }
}

/// Collects output until the server object exists, then forwards to it.
final class OutputHolder: @unchecked Sendable {
    // Guarded by `lock`.
    let lock = NSLock()
    var buffer = ""
    weak var server: ServerProcess?

    func append(_ text: String) {
        lock.withLock {
            if let server { server.append(text) } else { buffer += text }
        }
    }

    /// From now on output goes to `server`, starting with what was buffered.
    func attach(_ server: ServerProcess) {
        lock.withLock {
            self.server = server
            server.append(buffer)
            buffer = ""
        }
    }
}

public struct ServerDidNotStart: Error, CustomStringConvertible {
    public var output: String
    public var description: String { "fieldsync serve did not start: \(output)" }
}
