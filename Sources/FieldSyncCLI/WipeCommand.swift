import ArgumentParser
import FieldSyncStore
import FieldSyncVault
import Foundation

/// `fieldsync wipe`: panic wipe by destroying the keys.
struct WipeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wipe", abstract: "Destroy the replica's keys at once, then remove its files (panic wipe).",
        discussion: """
            Every key slot is overwritten on the disk at once (well under a second, whatever the \
            replica's size); after that no passphrase opens what remains. Then the replica's files are \
            removed. Without --yes it first says how much has not reached the central node, and asks. \
            No passphrase is needed: anyone who can run commands as you can wipe.

            A plaintext replica (init --plaintext) has no keys: its files are overwritten with zeros, \
            which an SSD does not guarantee to erase.

            Example:
              fieldsync wipe --yes
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Flag(help: "Wipe without counting or asking.") var yes = false

    func run() async throws {
        let path = storeOptions.path
        let keyFilePath = KeyFile.path(forStore: path)
        let encrypted = FileManager.default.fileExists(atPath: keyFilePath)
        guard encrypted || FileManager.default.fileExists(atPath: path) else { throw CLIError("no replica at \(path): nothing to wipe") }
        if !yes {
            let unsynced = FileManager.default.fileExists(atPath: path) ? try ReplicaStore.unsyncedRevisions(at: path) : 0
            FileHandle.standardError.write(
                Data(
                    "\(path): \(unsynced) revision\(unsynced == 1 ? "" : "s") and 0 attachments have not reached the central node and will be lost.\n"
                        .utf8))
            guard try Terminal.confirm("Type wipe to destroy the replica: ", expecting: "wipe") else {
                throw CLIError("not wiped: confirm on a terminal, or give --yes")
            }
        }
        if encrypted {
            if let file = try? KeyFile.read(at: keyFilePath) { KeyAgent.lock(file) }
            try KeyFile.destroy(at: keyFilePath)
            for suffix in ["", "-wal", "-shm", "-journal"] { unlink(path + suffix) }
            print("wiped \(path): every key slot destroyed, the replica's files removed")
        } else {
            for suffix in ["", "-wal", "-shm", "-journal"] { SecureFile.shredAndRemove(path + suffix) }
            print("wiped \(path): a plaintext replica, overwritten with zeros and removed (an SSD may keep copies)")
        }
    }
}
