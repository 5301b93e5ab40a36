import ArgumentParser
import FieldSyncStore
import FieldSyncVault
import Foundation

/// `fieldsync passphrase`: change, add or remove the passphrases that open an encrypted replica.
struct PassphraseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "passphrase", abstract: "Change, add or remove the passphrases of an encrypted replica.",
        discussion: """
            These rewrap the replica's data key in its key file; the data is not encrypted again. The \
            new passphrase is asked twice on a terminal, or read from --new-passphrase-file.
            """,
        subcommands: [PassphraseChangeCommand.self, PassphraseAddCommand.self, PassphraseRemoveCommand.self])
}

/// The options and the key file every passphrase subcommand works on.
struct PassphraseChange {
    var keys: ReplicaKeys

    func keyFile() throws -> KeyFile {
        guard keys.isEncrypted else { throw CLIError("\(keys.store) is not encrypted (no key file); `fieldsync encrypt` encrypts it") }
        return try KeyFile.read(at: keys.keyFilePath)
    }

    /// Unlocked with the current passphrase itself (not the agent): the slot it opens is the one changed.
    func unlockWithPassphrase() throws -> (key: StoreKey, slot: Int, file: KeyFile) {
        try keys.unlock(try keyFile(), passphrase: try keys.passphrase(prompt: "Current passphrase for \(keys.store): "))
    }
}

struct PassphraseChangeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "change", abstract: "Replace the passphrase you give with a new one.",
        discussion: "Example:\n  fieldsync passphrase change")

    @OptionGroup var storeOptions: StoreOptions
    @Option(help: ArgumentHelp("A file whose first line is the new passphrase.", valueName: "FILE")) var newPassphraseFile: String?

    func run() async throws {
        let change = PassphraseChange(keys: storeOptions.keys)
        var (key, slot, file) = try change.unlockWithPassphrase()
        let new = try ReplicaKeys.newPassphrase(file: newPassphraseFile)
        try file.replace(slot: slot, kek: file.keyEncryptionKey(new), dataKey: key)
        try file.save()
        print("changed the passphrase of \(change.keys.store); the old one no longer opens it")
    }
}

struct PassphraseAddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Add a passphrase (a recovery passphrase kept by HQ, or with --duress a duress passphrase).",
        discussion: """
            A duress passphrase opens an ordinary-looking, empty replica under the same name, and at \
            that moment silently destroys every other key slot: the real data can then be opened by no \
            one. Its limits: an examiner who copied the disk before asking for the passphrase still \
            holds the real key file, and an empty replica may itself raise questions (docs/SECURITY.md).

            Examples:
              fieldsync passphrase add                      # e.g. the organisation's recovery passphrase
              fieldsync passphrase add --duress
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Flag(help: "Add the duress passphrase (at most one).") var duress = false
    @Option(help: ArgumentHelp("A file whose first line is the new passphrase.", valueName: "FILE")) var newPassphraseFile: String?

    func run() async throws {
        // The current passphrase itself, not the agent: whoever sits at an unlocked session must not
        // be able to add a passphrase of their own (as `cryptsetup luksAddKey` asks for one).
        let change = PassphraseChange(keys: storeOptions.keys)
        var (key, _, file) = try change.unlockWithPassphrase()
        let name = duress ? try ReplicaStore.open(at: change.keys.store, key: key).identity().name : ""
        let new = try ReplicaKeys.newPassphrase(file: newPassphraseFile, what: duress ? "Duress passphrase" : "New passphrase")
        try file.add(kind: duress ? .duress : .passphrase, kek: file.keyEncryptionKey(new), dataKey: key, decoyName: name)
        try file.save()
        print(
            duress
                ? "added a duress passphrase to \(change.keys.store): given anywhere, it opens an empty replica and destroys the real keys"
                : "added a passphrase to \(change.keys.store)")
    }
}

struct PassphraseRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove", abstract: "Remove the passphrase you give (never the last one), or with --duress the duress passphrase.",
        discussion: """
            Examples:
              fieldsync passphrase remove --passphrase-file old.txt
              fieldsync passphrase remove --duress
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Flag(help: "Remove the duress passphrase (give a real one, not the duress one).") var duress = false

    func run() async throws {
        let change = PassphraseChange(keys: storeOptions.keys)
        if duress {
            var (key, _, file) = try change.unlockWithPassphrase()
            try file.remove(slot: nil, dataKey: key)
            try file.save()
            print("removed the duress passphrase of \(change.keys.store)")
            return
        }
        var (key, slot, file) = try change.unlockWithPassphrase()
        try file.remove(slot: slot, dataKey: key)
        try file.save()
        print("removed that passphrase from \(change.keys.store); the others still open it")
    }
}
