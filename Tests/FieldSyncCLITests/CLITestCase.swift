import FieldSyncCore
import FieldSyncTestSupport
import Foundation
import Testing

/// A temp folder of replicas driven through the built `fieldsync` binary.
struct CLIWorkspace {
    let dir: TemporaryDirectory
    let binary: FieldSyncBinary

    init(_ label: String) throws {
        dir = try TemporaryDirectory(label)
        binary = try FieldSyncBinary()
    }

    func store(_ name: String) -> String { dir.file("\(name).fieldsync") }

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
        let result = try await binary.run(arguments, store: store(name), stdin: stdin)
        #expect(result.status == 0, "\(arguments): \(result)", sourceLocation: sourceLocation)
        return result
    }

    /// Runs a command and returns its result, whatever the exit status.
    func run(_ name: String, _ arguments: [String]) async throws -> CommandResult {
        try await binary.run(arguments, store: store(name))
    }

    func run(_ name: String, _ arguments: String..., stdin: String? = nil) async throws -> CommandResult {
        try await binary.run(arguments, store: store(name), stdin: stdin)
    }

    func initReplica(_ name: String) async throws {
        try await ok(name, "init", "--name", name, "--plaintext")
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
        let result = try await binary.run(["add"] + arguments, store: store(name))
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
