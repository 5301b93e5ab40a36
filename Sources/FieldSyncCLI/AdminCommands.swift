import ArgumentParser
import FieldSyncClient
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore

/// `fieldsync users`: accounts on the central node (admins only).
struct UsersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users", abstract: "List, add or revoke accounts on the central node (admins).",
        subcommands: [UsersListCommand.self, UsersAddCommand.self, UsersRevokeCommand.self])
}

struct UsersListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List accounts.")
    @OptionGroup var storeOptions: StoreOptions
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let answer = try await CentralNode.call(try storeOptions.open()) { try await $0.send(method: .GET, path: "/v1/users", body: nil) }
        let users = answer["users"]?.arrayValue ?? []
        if json {
            print(JSONValue.array(users).prettyText())
            return
        }
        for user in users {
            let revoked = user["revoked"]?.intValue.map { "  revoked \(RecordPresenter.isoTime($0))" } ?? ""
            print(
                TerminalText.visible(
                    "\(user["name"]?.stringValue ?? "?")  \(user["role"]?.stringValue ?? "?")  devices: \(user["devices"]?.intValue ?? 0)\(revoked)"
                ))
        }
    }
}

struct UsersAddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Create an account and print its one-time enrolment code.",
        discussion: "Example:\n  fieldsync users add omar --role documenter")
    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "The account name.") var name: String
    @Option(help: "admin or documenter.") var role: String
    @Option(help: "Hours until the code expires (1 to 720).") var expiresHours = 24
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard let role = Role(rawValue: role) else { throw ValidationError("--role must be admin or documenter") }
        _ = role
        guard AccountName.isValid(name) else { throw ValidationError("the name must be \(AccountName.rule)") }
        guard (1...720).contains(expiresHours) else { throw ValidationError("--expires-hours must be from 1 to 720") }
    }

    func run() async throws {
        let request = AddUserRequest(name: name, role: Role(rawValue: role)!, expiresHours: expiresHours)
        let answer = try await CentralNode.call(try storeOptions.open()) {
            try await $0.send(method: .POST, path: "/v1/users", body: request.json.canonicalBytes)
        }
        guard let code = answer["code"]?.stringValue, case .int(let expires)? = answer["expires"] else {
            throw CLIError("unexpected answer from the server")
        }
        EnrolmentCode.print(user: name, role: role, code: code, expires: expires, json: json)
    }
}

struct UsersRevokeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke an account and all its devices.")
    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "The account name.") var name: String

    func run() async throws {
        guard AccountName.isValid(name) else { throw CLIError("\(name) is not an account name") }
        _ = try await CentralNode.call(try storeOptions.open()) {
            try await $0.send(method: .POST, path: "/v1/users/\(name)/revoke", body: nil)
        }
        print("revoked \(name); revisions it pushed earlier stay valid")
    }
}

/// `fieldsync devices`: enrolled devices (admins only).
struct DevicesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices", abstract: "List or revoke enrolled devices (admins).",
        subcommands: [DevicesListCommand.self, DevicesRevokeCommand.self])
}

struct DevicesListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List devices.")
    @OptionGroup var storeOptions: StoreOptions
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let answer = try await CentralNode.call(try storeOptions.open()) { try await $0.send(method: .GET, path: "/v1/devices", body: nil) }
        let devices = answer["devices"]?.arrayValue ?? []
        if json {
            print(JSONValue.array(devices).prettyText())
            return
        }
        for d in devices {
            let revoked = d["revoked"]?.intValue.map { "  revoked \(RecordPresenter.isoTime($0))" } ?? ""
            let enrolled = d["enrolled"]?.intValue.map(RecordPresenter.isoTime) ?? "?"
            print(
                TerminalText.visible(
                    "\(d["node"]?.stringValue ?? "?")  \(d["user"]?.stringValue ?? "?")  \(d["role"]?.stringValue ?? "?")  enrolled \(enrolled)\(revoked)"
                ))
        }
    }
}

struct DevicesRevokeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke", abstract: "Revoke a device (e.g. a lost or seized laptop); it can no longer push or pull.",
        discussion: "Example:\n  fieldsync devices revoke 4e254b4606f09765")
    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "The device's node id (see `fieldsync devices list`).") var node: String

    func run() async throws {
        guard NodeID(node) != nil else { throw CLIError("\(node) is not a node id (16 lowercase hex digits)") }
        _ = try await CentralNode.call(try storeOptions.open()) {
            try await $0.send(method: .POST, path: "/v1/devices/\(node)/revoke", body: nil)
        }
        print("revoked device \(node); revisions it pushed earlier stay valid")
    }
}

/// `fieldsync audit`: the central node's append-only audit log (admins only).
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Show the central node's audit log: who enrolled, pushed, pulled, revoked and resolved (admins).")
    @OptionGroup var storeOptions: StoreOptions
    @Option(help: "How many of the newest entries (1 to 10000).") var limit = 100
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        guard (1...10_000).contains(limit) else { throw CLIError("--limit must be from 1 to 10000") }
        let answer = try await CentralNode.call(try storeOptions.open()) {
            try await $0.send(method: .GET, path: "/v1/audit?limit=\(limit)", body: nil)
        }
        let entries = answer["entries"]?.arrayValue ?? []
        if json {
            print(JSONValue.array(entries).prettyText())
            return
        }
        for e in entries {
            let time = e["time"]?.intValue.map(RecordPresenter.isoTime) ?? "?"
            print(
                TerminalText.visible(
                    "\(time)  \(e["user"]?.stringValue ?? "-")  \(e["device"]?.stringValue ?? "-")  \(e["action"]?.stringValue ?? "?")  \(e["detail"]?.stringValue ?? "")  from \(e["address"]?.stringValue ?? "-")"
                ))
        }
    }
}
