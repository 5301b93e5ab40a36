import ArgumentParser
import FieldSyncStore
import FieldSyncVault
import Foundation

/// `fieldsync encrypt`: turns a plaintext replica into an encrypted one.
struct EncryptCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encrypt", abstract: "Encrypt a plaintext replica under a passphrase, and remove the plaintext file.",
        discussion: """
            The sealed copy is written under an exclusive lock and checked first; then it takes the \
            replica's place and the old file is overwritten and removed. Run it again after an \
            interruption: it finishes the conversion with the passphrase given the first time. On an \
            SSD, copies of the old plaintext may survive in blocks the disk remapped: the safe route is \
            a fresh encrypted replica (`fieldsync init`, then `enroll` and `sync` to pull everything \
            back), and `fieldsync wipe` of the old one.

            Example:
              fieldsync encrypt
            """)

    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
        let path = storeOptions.path
        let keys = storeOptions.keys
        let sealed = path + ".encrypting"
        guard FileManager.default.fileExists(atPath: path) else { throw StoreError(.noReplica, "no replica at \(path)") }
        if keys.isEncrypted {
            // A conversion cut short after the key file was written: the sealed copy is complete.
            guard ReplicaStore.isSealed(at: path) == false, FileManager.default.fileExists(atPath: sealed) else {
                throw CLIError("\(path) is already encrypted (its key file \(keys.keyFilePath) exists)")
            }
            guard let key = try keys.dataKey() else { throw CLIError("\(path): no key") }
            let check = try ReplicaStore.open(at: sealed, key: key)
            let revisions = try check.status().revisions
            try check.close()
            try finish(path: path, sealed: sealed, snapshot: nil)
            print("finished encrypting \(path) (\(revisions) revisions); key file \(keys.keyFilePath)")
            warnAboutCopies()
            return
        }
        let passphrase = try ReplicaKeys.newPassphrase(file: keys.explicitPassphraseFile, what: "Passphrase for the replica")
        ReplicaKeys.hardenProcess()
        let key = StoreKey.random()
        let keyFile = try KeyFile.make(at: keys.keyFilePath, passphrase: passphrase, dataKey: key, kdf: .calibrated())
        for suffix in ["", "-wal", "-shm", "-journal"] { unlink(sealed + suffix) }
        let snapshot = try ReplicaStore.writeSealedCopy(of: path, to: sealed, key: key)
        do {
            let check = try ReplicaStore.open(at: sealed, key: key)
            let copied = try check.status().revisions
            try check.close()
            guard copied == snapshot.revisions else {
                throw CLIError("the sealed copy holds \(copied) revisions, not \(snapshot.revisions); nothing was changed")
            }
            try keyFile.create()
        } catch {
            unlink(sealed)
            throw error
        }
        try finish(path: path, sealed: sealed, snapshot: snapshot)
        print("encrypted \(path) (\(snapshot.revisions) revisions); key file \(keys.keyFilePath)")
        warnAboutCopies()
    }

    /// The sealed copy takes the replica's name; the old file, still open here, is then overwritten,
    /// unless it changed after the copy (a process that had it open kept writing): then its content
    /// is kept beside the replica, and nothing is lost.
    func finish(path: String, sealed: String, snapshot: ReplicaStore.PlainSnapshot?) throws {
        // No journal of the old file may be taken for the new one's.
        for suffix in ["-wal", "-shm", "-journal"] { SecureFile.shredAndRemove(path + suffix) }
        let old = open(path, O_RDWR | O_CLOEXEC)
        defer { if old >= 0 { close(old) } }
        guard rename(sealed, path) == 0 else {
            throw CLIError("cannot move the sealed copy into place: \(String(cString: strerror(errno))); run `fieldsync encrypt` again")
        }
        SecureFile.syncFolder(of: path)
        guard old >= 0 else { return }
        var info = stat()
        guard fstat(old, &info) == 0 else { return }
        let modified = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        if let snapshot, snapshot.size != Int64(info.st_size) || snapshot.modified != modified {
            let kept = path + ".plaintext-changed"
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let count = read(old, &buffer, buffer.count)
                guard count > 0 else { break }
                bytes += buffer[0..<count]
            }
            try SecureFile.writeAtomically(bytes, to: kept)
            throw CLIError(
                "\(path) changed while it was encrypted: the encrypted replica is in place, and the plaintext with the later changes is kept as \(kept); bring them over with `bundle export --store \(kept) --plaintext-bundle` and `bundle import`, then `wipe --store \(kept)`"
            )
        }
        SecureFile.shred(descriptor: old, path: path)
    }

    func warnAboutCopies() {
        FileHandle.standardError.write(
            Data(
                "fieldsync: warning: the old plaintext file was overwritten and removed, but an SSD may keep copies of it; the safe route is a fresh encrypted replica that pulls from the central node\n"
                    .utf8))
    }
}
