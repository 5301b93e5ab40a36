import ArgumentParser
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore
import Foundation

/// `fieldsync server`: administration directly on the central node's store, on its own machine.
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server", abstract: "Administer the central node's store directly (on the server machine).",
        subcommands: [ServerAddUserCommand.self, ServerMigrateCommand.self])
}

struct ServerAddUserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add-user", abstract: "Create an account and print its one-time enrolment code.",
        discussion: """
            The code is single-use, carries 200 random bits, and expires (default 24 hours). Give it to \
            the person in a safe way; they run `fieldsync enroll --server URL --code CODE`.

            Example (the first admin):
              fieldsync server add-user amira --role admin --store /srv/fieldsync/central.sqlite
              fieldsync server add-user amira --role admin     # the default store of `fieldsync serve`
              fieldsync server add-user amira --role admin --database postgres://fieldsync@db/fieldsync
            """)

    @Argument(help: "The account name (letters, digits, '.', '_', '-').") var name: String
    @Option(help: "admin or documenter.") var role: String
    @Option(
        help: ArgumentHelp(
            "The server's store (default: $FIELDSYNC_STORE, else $XDG_DATA_HOME/fieldsync/server.sqlite), created when missing.",
            valueName: "PATH"))
    var store: String?
    @Option(help: ArgumentHelp("A central node on PostgreSQL instead (default: $FIELDSYNC_DATABASE_URL).", valueName: "URL"))
    var database: String?
    @Option(help: "Hours until the code expires (1 to 720).") var expiresHours = 24
    @Flag(help: "Print the result as JSON.") var json = false

    func validate() throws {
        guard Role(rawValue: role) != nil else { throw ValidationError("--role must be admin or documenter") }
        guard AccountName.isValid(name) else { throw ValidationError("the name must be \(AccountName.rule)") }
        guard (1...720).contains(expiresHours) else { throw ValidationError("--expires-hours must be from 1 to 720") }
    }

    func run() async throws {
        if let url = try DatabaseOption.url(database) {
            guard store == nil else { throw CLIError("give --store (SQLite) or --database (PostgreSQL), not both") }
            let code = Secrets.newEnrolmentCode()
            let now = nowMilliseconds()
            let expires = now + Int64(expiresHours) * 3_600_000
            let (name, role) = (self.name, Role(rawValue: role)!)
            do {
                try await DatabaseOption.withStore(url) { store in
                    try await store.addAccountAudited(name: name, role: role, codeHash: Secrets.hash(code), expires: expires, now: now)
                }
            } catch let error as ProtocolError { throw CLIError(error.message) }
            EnrolmentCode.print(user: name, role: role.rawValue, code: code, expires: expires, json: json)
            return
        }
        let path = ServeCommand.storePath(store)
        let creates = !FileManager.default.fileExists(atPath: path)
        let replica =
            creates
            ? try ReplicaStore.create(at: path, name: "central", now: nowMilliseconds()) : try ReplicaStore.open(at: path)
        // stdout carries the code (and is parsed by scripts), so the created file is named on stderr.
        if creates { FileHandle.standardError.write(Data("fieldsync: created the central node's store \(path)\n".utf8)) }
        let code = Secrets.newEnrolmentCode()
        let now = nowMilliseconds()
        let expires = now + Int64(expiresHours) * 3_600_000
        try replica.addAccount(name: name, role: Role(rawValue: role)!, codeHash: Secrets.hash(code), expires: expires, now: now)
        EnrolmentCode.print(user: name, role: role, code: code, expires: expires, json: json)
    }
}

/// How a new enrolment code is shown, by `server add-user` and `users add` alike.
enum EnrolmentCode {
    static func print(user: String, role: String, code: String, expires: Int64, json: Bool) {
        if json {
            Swift.print(
                JSONValue.object([
                    "user": .string(user), "role": .string(role), "code": .string(code),
                    "expires": .string(RecordPresenter.isoTime(expires)),
                ]).canonicalText)
        } else {
            Swift.print("account \(user) (\(role)); one-time enrolment code, valid until \(RecordPresenter.isoTime(expires)):")
            Swift.print(code)
        }
    }
}
