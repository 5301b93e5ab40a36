import ArgumentParser
import FieldSyncCore
import FieldSyncStore

/// `fieldsync init`: creates a replica.
struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Create a replica and print its node id.",
        discussion: "Example:\n  fieldsync init --name \"Rima (Jableh team)\" --server https://central.example.org")

    @OptionGroup var storeOptions: StoreOptions
    @Option(help: "Your name, recorded as the author of every change you make.") var name: String
    @Option(help: "The central node to sync with; `sync --server` overrides it.") var server: String?
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        if let server { try SyncCommand.checkURL(server) }
        let store = try ReplicaStore.create(at: storeOptions.path, name: name, now: nowMilliseconds())
        if let server { try store.setServer(server) }
        let identity = try store.identity()
        if json {
            print(
                JSONValue.object(["node": .string(identity.node.rawValue), "name": .string(identity.name), "store": .string(store.path)])
                    .canonicalText)
        } else {
            print("Created replica \(store.path) for \(identity.name)")
            print("node id: \(identity.node)")
        }
    }
}
