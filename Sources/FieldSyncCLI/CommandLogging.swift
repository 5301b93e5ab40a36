import Foundation
import Logging

/// The log level of one `fieldsync` process, chosen once, before its command runs.
///
/// The servers (`serve`, `console`) log at info. Every other command logs at warning: a
/// documenter's command says what happened in its own words and leaves the library's notices out
/// (a sync that re-mints prints one line of its own, not that line and three log records).
/// `FIELDSYNC_LOG_LEVEL` (trace, debug, info, notice, warning, error or critical) sets the level
/// of any command, for instance `FIELDSYNC_LOG_LEVEL=debug fieldsync sync` to see each fallback
/// of the sync pipeline.
enum CommandLogging {
    static let variable = "FIELDSYNC_LOG_LEVEL"

    private static let lock = NSLock()
    nonisolated(unsafe) private static var bootstrapped = false

    /// The level `FIELDSYNC_LOG_LEVEL` names, or `fallback` when it is unset or empty.
    static func level(environment: [String: String] = ProcessInfo.processInfo.environment, fallback: Logger.Level) throws
        -> Logger.Level
    {
        guard let name = environment[variable], !name.isEmpty else { return fallback }
        guard let level = Logger.Level(rawValue: name.lowercased()) else {
            throw CLIError("\(variable) must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")), not '\(name)'")
        }
        return level
    }

    /// Sets up swift-log on standard error at `level`. swift-log takes one bootstrap per process:
    /// the first call wins and later ones do nothing.
    static func bootstrap(_ level: Logger.Level) {
        lock.lock()
        defer { lock.unlock() }
        guard !bootstrapped else { return }
        bootstrapped = true
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
