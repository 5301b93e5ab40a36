import FieldSyncCore
import FieldSyncTestSupport
import Foundation
import Testing

/// A temp folder of replicas driven through the built `fieldsync` binary.
///
/// `encrypted`: every replica it makes is encrypted (a passphrase file each) and unlocked by an agent
/// whose socket is in the workspace, so that the commands of a test need no passphrase; bundles
/// then travel sealed under a shared bundle passphrase. `FIELDSYNC_TEST_ENCRYPTED=1` makes that the
/// default, which is how `.ci/run` runs the sync, bundle and conflict suites a second time.
struct CLIWorkspace {
    let dir: TemporaryDirectory
    let binary: FieldSyncBinary
    let encrypted: Bool
    /// Every command's environment: the workspace's own `XDG_RUNTIME_DIR` for agent sockets.
    let environment: [String: String]

    init(_ label: String, encrypted: Bool = ProcessInfo.processInfo.environment["FIELDSYNC_TEST_ENCRYPTED"] == "1") throws {
        dir = try TemporaryDirectory(label)
        binary = try FieldSyncBinary()
        self.encrypted = encrypted
        let runtime = dir.file("run")
        try FileManager.default.createDirectory(atPath: runtime, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        environment = ["XDG_RUNTIME_DIR": runtime]
        try "the bundle passphrase\n".write(toFile: bundlePassphraseFile, atomically: true, encoding: .utf8)
    }

    var bundlePassphraseFile: String { dir.file("bundle.pass") }
    func passphraseFile(_ name: String) -> String { dir.file("\(name).pass") }

    /// Bundles between encrypted replicas are sealed: export and import are given the bundle passphrase.
    func withBundlePassphrase(_ arguments: [String]) -> [String] {
        guard encrypted, arguments.count >= 2, arguments[0] == "bundle", ["export", "import"].contains(arguments[1]),
            !arguments.contains("--plaintext-bundle"), !arguments.contains("--bundle-passphrase-file")
        else { return arguments }
        return arguments + ["--bundle-passphrase-file", bundlePassphraseFile]
    }

    func store(_ name: String) -> String { dir.file("\(name).fieldsync") }

    /// Starts `fieldsync serve` over the central store `file` of this workspace, as a child process:
    /// the built binary, with its own threads, so that no load of the test process can hold up its
    /// answers to the commands of a test.
    func startServer(_ file: String = "server.sqlite") async throws -> CLIServer {
        let path = dir.file(file)
        return CLIServer(process: try await ServerProcess.start(binary: binary, store: path), storePath: path)
    }

    /// Runs a command against a replica and expects it to succeed.
    @discardableResult
    func ok(_ name: String, _ arguments: String..., stdin: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) async throws
        -> CommandResult
    {
        try await ok(name, arguments, stdin: stdin, sourceLocation: sourceLocation)
    }

    @discardableResult
    func ok(_ name: String, _ arguments: [String], stdin: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) async throws
        -> CommandResult
    {
        let result = try await binary.run(withBundlePassphrase(arguments), store: store(name), stdin: stdin, environment: environment)
        #expect(result.status == 0, "\(arguments): \(result)", sourceLocation: sourceLocation)
        return result
    }

    /// Runs a command and returns its result, whatever the exit status.
    func run(_ name: String, _ arguments: [String]) async throws -> CommandResult {
        try await binary.run(withBundlePassphrase(arguments), store: store(name), environment: environment)
    }

    func run(_ name: String, _ arguments: String..., stdin: String? = nil) async throws -> CommandResult {
        try await binary.run(withBundlePassphrase(arguments), store: store(name), stdin: stdin, environment: environment)
    }

    func initReplica(_ name: String) async throws {
        guard encrypted else {
            try await ok(name, "init", "--name", name, "--plaintext")
            return
        }
        try "\(name)'s passphrase\n".write(toFile: passphraseFile(name), atomically: true, encoding: .utf8)
        try await ok(name, "init", "--name", name, "--passphrase-file", passphraseFile(name))
        try await ok(name, "unlock", "--for", "5m", "--passphrase-file", passphraseFile(name))
    }

    /// Makes every agent of this workspace forget its key (the end of an encrypted test).
    func lockAll() async {
        guard encrypted, let files = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { return }
        for file in files where file.hasSuffix(".fieldsync.keys") {
            _ = try? await binary.run(["lock"], store: dir.file(String(file.dropLast(".keys".count))), environment: environment)
        }
    }

    /// Creates a replica and enrols it with a central node, as a person would: an account made with
    /// `fieldsync server add-user` on the server's store, then `fieldsync enroll` with the code.
    func initReplica(_ name: String, server: String, serverStore: String, role: String = "documenter") async throws {
        try await initReplica(name)
        try await enrol(name, server: server, serverStore: serverStore, role: role)
    }

    func enrol(_ name: String, server: String, serverStore: String, role: String = "documenter") async throws {
        let added = try await binary.run(["server", "add-user", name, "--role", role, "--store", serverStore, "--json"])
        #expect(added.status == 0, "\(added)")
        let code = try #require(try added.json()["code"]?.stringValue)
        try await ok(name, "enroll", "--server", server, "--code", code)
    }

    func add(_ name: String, _ arguments: String...) async throws -> String {
        let result = try await binary.run(["add"] + arguments, store: store(name), environment: environment)
        #expect(result.status == 0, "\(result)")
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func show(_ name: String, _ id: String) async throws -> JSONValue { try await ok(name, "show", id, "--json").json() }

    /// `list --json` of every record including deleted ones: equal across converged replicas.
    func state(_ name: String) async throws -> String { try await ok(name, "list", "--all", "--json").stdout }

    /// The states of several replicas.
    func states(_ names: [String]) async throws -> [String] {
        var result: [String] = []
        for name in names { result.append(try await state(name)) }
        return result
    }

    /// Moves what `from` has to `to` by bundle file.
    @discardableResult
    func exchange(_ from: String, _ to: String) async throws -> CommandResult {
        let file = dir.file("\(from)-to-\(to)-\(UUID().uuidString.prefix(4)).bundle")
        try await ok(from, "bundle", "export", "--out", file)
        return try await ok(to, "bundle", "import", file)
    }
}

/// A central node that a CLI test drives: `fieldsync serve` as a child process, and its store's path
/// (for `fieldsync server add-user --store`). The process is killed when this is released unstopped.
struct CLIServer {
    let process: ServerProcess
    let storePath: String
    var url: String { process.url }

    /// Stops the server with SIGTERM and waits until it has exited.
    func stop() async { _ = await process.stop(signal: SIGTERM) }
}
