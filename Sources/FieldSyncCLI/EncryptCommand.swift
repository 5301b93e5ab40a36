import ArgumentParser
import FieldSyncStore
import FieldSyncVault
import Foundation

/// `fieldsync encrypt`: turns a plaintext replica into an encrypted one.
struct EncryptCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encrypt", abstract: "Encrypt a plaintext replica under a passphrase, and remove the plaintext file.",
        discussion: """
            The sealed copy is written and checked first; then it takes the replica's place and the old \
            file is overwritten and removed. On an SSD, copies of the old plaintext may survive in blocks \
            the disk remapped: the safe route is a fresh encrypted replica (`fieldsync init`, then \
            `enroll` and `sync` to pull everything back), and `fieldsync wipe` of the old one.

            Example:
              fieldsync encrypt
            """)

    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        let path = storeOptions.path
        let keys = storeOptions.keys
        guard FileManager.default.fileExists(atPath: path) else { throw StoreError(.noReplica, "no replica at \(path)") }
        if keys.isEncrypted { throw CLIError("\(path) is already encrypted (its key file \(keys.keyFilePath) exists)") }
        let before = try ReplicaStore.open(at: path)
        let revisions = try before.status().revisions
        try before.close()
        let passphrase = try ReplicaKeys.newPassphrase(file: keys.explicitPassphraseFile, what: "Passphrase for the replica")
        let key = StoreKey.random()
        let keyFile = try KeyFile.make(at: keys.keyFilePath, passphrase: passphrase, dataKey: key, kdf: .calibrated())
        let sealed = path + ".encrypting"
        for suffix in ["", "-wal", "-shm", "-journal"] { unlink(sealed + suffix) }
        try ReplicaStore.writeSealedCopy(of: path, to: sealed, key: key)
        do {
            let check = try ReplicaStore.open(at: sealed, key: key)
            let copied = try check.status().revisions
            try check.close()
            guard copied == revisions else {
                throw CLIError("the sealed copy holds \(copied) revisions, not \(revisions); nothing was changed")
            }
            try keyFile.create()
        } catch {
            unlink(sealed)
            throw error
        }
        // No journal of the old file may be taken for the new one's.
        for suffix in ["-wal", "-shm", "-journal"] { SecureFile.shredAndRemove(path + suffix) }
        // The old file stays open while the sealed copy takes its name, then is overwritten.
        let old = open(path, O_WRONLY | O_CLOEXEC)
        guard rename(sealed, path) == 0 else {
            if old >= 0 { close(old) }
            throw CLIError(
                "cannot move the sealed copy into place: \(String(cString: strerror(errno))); the key file and \(sealed) are kept")
        }
        if old >= 0 {
            var info = stat()
            if fstat(old, &info) == 0 {
                let zeros = [UInt8](repeating: 0, count: 1 << 20)
                var offset = 0
                while offset < Int(info.st_size) {
                    let count = min(zeros.count, Int(info.st_size) - offset)
                    guard zeros.withUnsafeBytes({ pwrite(old, $0.baseAddress, count, off_t(offset)) }) == count else { break }
                    offset += count
                }
                fsync(old)
            }
            close(old)
        }
        print("encrypted \(path) (\(revisions) revisions); key file \(keys.keyFilePath)")
        FileHandle.standardError.write(
            Data(
                "fieldsync: warning: the old plaintext file was overwritten and removed, but an SSD may keep copies of it; the safe route is a fresh encrypted replica that pulls from the central node\n"
                    .utf8))
    }
}
