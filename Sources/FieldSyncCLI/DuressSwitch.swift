import Crypto
import FieldSyncCore
import FieldSyncStore
import FieldSyncVault
import Foundation

/// What the duress passphrase does, silently, before the command goes on as if nothing happened:
/// every other key slot is overwritten in place (the real data can no longer be opened by anyone),
/// the replica's files are removed, and a fresh, empty replica under the same name takes their
/// place, sealed under the decoy key. Each step can be repeated: a switch cut short by a crash is
/// finished by the next use of the duress passphrase.
struct DuressSwitch {
    var store: String
    var keyFile: KeyFile

    /// Returns the key file as it is afterwards.
    func engage(decoyKey: StoreKey, decoyName: String, slot: Int, kek: SymmetricKey) throws -> KeyFile {
        var file = keyFile
        KeyAgent.lock(file)
        // The decoy carries the real replica's creation time (a clear column), not the moment of
        // the switch, which would give it away.
        let created = ReplicaStore.creationTime(at: store) ?? nowMilliseconds()
        file.destroyAllSlots(except: slot)
        try file.overwriteInPlace()
        for suffix in ["", "-wal", "-shm", "-journal"] { unlink(store + suffix) }
        let name = decoyName.isEmpty ? "replica" : decoyName
        let decoy = try ReplicaStore.create(at: store, name: name, now: created, key: decoyKey)
        try decoy.close()
        try file.keepOnly(duressSlot: slot, kek: kek, decoyKey: decoyKey)
        try file.overwriteInPlace()
        return file
    }
}
