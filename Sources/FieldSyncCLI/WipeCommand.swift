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
            // A count that cannot be read (a damaged or locked file) never stands in the way of a wipe.
            let unsynced =
                (try? ReplicaStore.unsyncedRevisions(at: path)).map { "\($0) revision\($0 == 1 ? "" : "s")" }
                ?? "an unknown number of revisions"
            let attachments =
                (try? ReplicaStore.unreceiptedAttachments(at: path)).map { "\($0) attachment\($0 == 1 ? "" : "s")" }
                ?? "an unknown number of attachments"
            FileHandle.standardError.write(
                Data("\(path): \(unsynced) and \(attachments) have not reached the central node and will be lost.\n".utf8))
            guard try Terminal.confirm("Type wipe to destroy the replica: ", expecting: "wipe") else {
                throw CLIError("not wiped: confirm on a terminal, or give --yes")
            }
        }
        // Keys first, in one small write each: after that nothing left opens.
        if let file = try? KeyFile.read(at: keyFilePath) { KeyAgent.lock(file) }
        for keys in [keyFilePath, keyFilePath + ".new"] where FileManager.default.fileExists(atPath: keys) {
            try KeyFile.destroy(at: keys)
        }
        // A sealed file is only unlinked (it is ciphertext); one that is not, or cannot be told,
        // is overwritten first. A conversion's leftovers go too.
        let sealed = ReplicaStore.isSealed(at: path) == true
        var files = ["", "-wal", "-shm", "-journal"].map { path + $0 }
        files += ["", "-journal"].map { path + ".encrypting" + $0 }
        for file in files where FileManager.default.fileExists(atPath: file) {
            if sealed || file.contains(".encrypting") { unlink(file) } else { SecureFile.shredAndRemove(file) }
        }
        // Attachment chunks: sealed under the destroyed key in an encrypted replica (only
        // unlinked, as the file is), overwritten first in a plaintext one.
        let blobs = path + ".blobs"
        if let walker = FileManager.default.enumerator(atPath: blobs) {
            for case let name as String in walker {
                let file = "\(blobs)/\(name)"
                var info = stat()
                guard stat(file, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
                if encrypted && sealed { unlink(file) } else { SecureFile.shredAndRemove(file) }
            }
            try? FileManager.default.removeItem(atPath: blobs)
        }
        print(
            encrypted && sealed
                ? "wiped \(path): every key slot destroyed, the replica's files removed"
                : "wiped \(path): overwritten with zeros and removed (a plaintext replica has no keys to destroy; an SSD may keep copies)")
    }
}
