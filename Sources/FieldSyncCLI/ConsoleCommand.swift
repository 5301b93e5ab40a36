import ArgumentParser
import FieldSyncConsole
import FieldSyncStore
import FieldSyncVault
import Foundation
import Hummingbird

/// `fieldsync console`: a web interface over this replica, served on 127.0.0.1 to this user's
/// browser. Every change it makes is an ordinary revision signed with the replica's own key.
struct ConsoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console", abstract: "Open a web interface to this replica (on 127.0.0.1 only; Ctrl-C stops it).",
        discussion: """
            The first line printed is the address to open, with a one-time login token; the browser \
            exchanges it for a session cookie. Nothing is loaded from the internet: it works offline.

            Examples:
              fieldsync console
              fieldsync console --store ~/cases/replica.sqlite --port 8765 --no-open
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Option(help: "The port on 127.0.0.1 (0, the default, picks a free one).") var port = 0
    @Flag(help: "Do not open a browser (print the address only).") var noOpen = false

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be from 0 to 65535") }
    }

    func run() async throws {
        let path = storeOptions.path
        let keys = storeOptions.keys
        guard keys.isEncrypted || FileManager.default.fileExists(atPath: path) else {
            throw CLIError("no replica at \(path): create one with `fieldsync init`, or give --store PATH")
        }
        if keys.isEncrypted { ReplicaKeys.hardenProcess() }  // the data key will be in this process's memory
        let replica = ConsoleReplica { passphrase in
            if let passphrase {
                let key = try keys.unlock(try KeyFile.read(at: keys.keyFilePath), passphrase: passphrase).key
                return try ReplicaStore.open(at: path, access: .pool, key: key)
            }
            // A pool: the pages' reads do not wait for one another.
            guard keys.isEncrypted else { return try ReplicaStore.open(at: path, access: .pool) }
            // Without a passphrase file or an agent the page asks: never the terminal.
            if keys.explicitPassphraseFile != nil { return try ReplicaStore.open(at: path, access: .pool, key: try keys.dataKey()) }
            guard let key = KeyAgent.fetchKey(for: try KeyFile.read(at: keys.keyFilePath)) else { return nil }
            return try ReplicaStore.open(at: path, access: .pool, key: key)
        }
        if !keys.isEncrypted { _ = try ReplicaStore.open(at: path) }  // a broken file fails here, in one line
        let token = ConsoleSessions.newToken()
        let configuration = ConsoleConfiguration(
            replica: replica, sessions: ConsoleSessions(loginToken: token), sync: ConsoleSyncJob(runner: Self.syncRunner),
            base: ConsoleConfiguration.randomBase(), newEntryID: AddCommand.newEntryID)
        let base = configuration.base
        let logger = ServeCommand.bootstrapLogging()
        let open = !noOpen
        let app = buildConsoleApplication(configuration, port: port, logger: logger) { bound in
            let url = "http://127.0.0.1:\(bound)\(base)login?token=\(token)"
            print("fieldsync console: \(url)")
            print("Open it in a browser on this computer; Ctrl-C stops the console.")
            fflush(nil)
            if open { Self.openBrowser(url) }
        }
        try await app.runService()
    }

    /// Runs `fieldsync sync`'s session for the console's Sync button.
    static let syncRunner: ConsoleSyncRunner = { store, progress in
        let outcome = try await SyncSession().run(store) { event in
            switch event {
            case .revisions(.pushed(let total)): progress(ConsoleSyncProgress(text: "pushed \(total) revisions…"))
            case .revisions(.pulled(let total)): progress(ConsoleSyncProgress(text: "pulled \(total) revisions…"))
            case .revisions(.retrying(let attempt, let delay, let reason)):
                progress(ConsoleSyncProgress(text: "\(reason); retry \(attempt) in \(delay) s"))
            case .revisions(.nodeRetired(let old, let new)): progress(ConsoleSyncProgress(text: SyncSession.retiredText(old, new)))
            case .attachmentsStarted: progress(ConsoleSyncProgress(text: "attachments…"))
            case .attachments(let verb, let done, let total):
                progress(
                    ConsoleSyncProgress(text: "\(verb) \(ByteCount.text(done)) of \(ByteCount.text(total))", done: done, total: total))
            case .finished: break
            }
        }
        var lines = try SyncSession.summary(outcome, store: store)
        lines += outcome.attachments.failed.map { "attachment \($0)" }
        lines += outcome.attachments.incomplete.map { "warning: attachment \($0)" }
        if let failure = SyncSession.attachmentFailure(outcome.attachments) {
            throw CLIError((lines + [failure]).joined(separator: "; "))
        }
        return lines
    }

    /// Opens the browser with `xdg-open` when there is one. The token never goes on a command line
    /// (other local users can read those): xdg-open gets a file only this user can read, which
    /// sends the browser on to the login address, and which is deleted soon after.
    static func openBrowser(_ url: String) {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map { "\($0)/xdg-open" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let path else { return }
        // Created 0600 by open(2) itself, never wider for a moment (another user watching the
        // folder could open it in that moment and keep reading it).
        let file = NSTemporaryDirectory() + "fieldsync-console-\(UUID().uuidString).html"
        let page =
            "<!DOCTYPE html><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0;url=\(url)\"><title>FieldSync console</title>"
        let fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        let bytes = Array(page.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == bytes.count else {
            unlink(file)
            return
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = [file]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try? process.run()
        Task.detached {
            try? await Task.sleep(for: .seconds(60))
            try? FileManager.default.removeItem(atPath: file)
        }
    }
}
