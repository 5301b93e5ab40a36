import ArgumentParser
import FieldSyncCore
import FieldSyncStore
import FieldSyncVault
import Foundation

/// `fieldsync init`: creates a replica, encrypted unless `--plaintext` is given.
struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Create a replica (encrypted) and print its node id.",
        discussion: """
            The replica is encrypted under a passphrase: asked twice on a terminal, or read from \
            --passphrase-file (or $FIELDSYNC_PASSPHRASE_FILE) by scripts. Its data key is kept, wrapped \
            under the passphrase, in the key file beside it (REPLICA.keys): keep both, lose neither.

            Example:
              fieldsync init --name "Rima (Jableh team)" --server https://central.example.org
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Option(help: "Your name, recorded as the author of every change you make.") var name: String
    @Option(help: "The central node to sync with; `sync --server` overrides it.") var server: String?
    @Flag(help: "Make an unencrypted replica: anyone who holds the laptop can read it.") var plaintext = false
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        if let server { try SyncCommand.checkURL(server) }
        let path = storeOptions.path
        let keyFilePath = KeyFile.path(forStore: path)
        if FileManager.default.fileExists(atPath: path) {
            throw StoreError(.alreadyExists, "a file already exists at \(path); refusing to overwrite it")
        }
        var keyFile: KeyFile?
        var key: StoreKey?
        // A key file left beside the path would make every command take the replica for an encrypted one.
        if FileManager.default.fileExists(atPath: keyFilePath) {
            throw CLIError("a key file already exists at \(keyFilePath); refusing to overwrite it (it may open another copy)")
        }
        if !plaintext {
            let passphrase = try ReplicaKeys.newPassphrase(
                file: storeOptions.keys.explicitPassphraseFile, what: "Passphrase for the new replica")
            let dataKey = StoreKey.random()
            keyFile = try KeyFile.make(at: keyFilePath, passphrase: passphrase, dataKey: dataKey, kdf: .calibrated())
            key = dataKey
        }
        let store = try ReplicaStore.create(at: path, name: name, now: nowMilliseconds(), key: key)
        do {
            try keyFile?.create()
        } catch {
            try? store.close()
            for suffix in ["", "-wal", "-shm", "-journal"] { unlink(path + suffix) }
            throw error
        }
        if let server { try store.setServer(server) }
        let identity = try store.identity()
        if json {
            var object: [String: JSONValue] = [
                "node": .string(identity.node.rawValue), "name": .string(identity.name), "store": .string(store.path),
                "encryption": .string(plaintext ? "none" : "passphrase"),
            ]
            if let keyFile { object["key_file"] = .string(keyFile.path) }
            print(JSONValue.object(object).canonicalText)
        } else {
            print("Created replica \(store.path) for \(identity.name)")
            print("node id: \(identity.node)")
            if let keyFile {
                print("encryption: passphrase (scrypt N=2^\(keyFile.kdf.log2N); key file \(keyFile.path))")
            } else {
                print("encryption: none (--plaintext): anyone who holds this laptop can read the replica")
            }
        }
    }
}
