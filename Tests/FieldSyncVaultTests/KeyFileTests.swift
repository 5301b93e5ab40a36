import FieldSyncStore
import FieldSyncTestSupport
import Foundation
import Testing

@testable import FieldSyncVault

/// The key file: slots, tampering, passphrase changes, the duress slot.
@Suite struct KeyFileTests {
    /// The minimum cost: these tests derive keys many times.
    let kdf = PassphraseKDF(log2N: PassphraseKDF.minimumLog2N)

    @Test func aPassphraseOpensItsSlotAndAWrongOneOpensNothing() async throws {
        // scrypt, many times, in a debug build: on a thread of its own, not the shared pool.
        try await DedicatedThread.run { [self] in try body() }
        @Sendable func body() throws {
            let dir = try TemporaryDirectory("keyfile")
            defer { dir.remove() }
            let key = StoreKey.random()
            let file = try KeyFile.make(at: dir.file("r.keys"), passphrase: "correct horse", dataKey: key, kdf: kdf)
            try file.create()
            let read = try KeyFile.read(at: file.path)
            guard case .replica(let opened, _) = try read.open(passphrase: "correct horse") else {
                Issue.record("the passphrase did not open the replica slot")
                return
            }
            #expect(opened == key)
            #expect(throws: VaultError.self) { try read.open(passphrase: "wrong horse") }
            #expect(try Data(contentsOf: URL(fileURLWithPath: file.path)).count == KeyFile.fileSize)
            let mode = try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int
            #expect(mode == 0o600)
        }
    }

    @Test func aTamperedHeaderALoweredCostAndATruncatedFileAreRefused() async throws {
        // scrypt, many times, in a debug build: on a thread of its own, not the shared pool.
        try await DedicatedThread.run { [self] in try body() }
        @Sendable func body() throws {
            let dir = try TemporaryDirectory("keyfile")
            defer { dir.remove() }
            let file = try KeyFile.make(at: dir.file("r.keys"), passphrase: "pass", dataKey: .random(), kdf: kdf)
            try file.create()
            let original = file.bytes

            var lowered = original
            lowered[9] = 10
            try Data(lowered).write(to: URL(fileURLWithPath: file.path))
            #expect { try KeyFile.read(at: file.path) } throws: { ($0 as? VaultError)?.message.contains("below the minimum") == true }

            var salted = original
            salted[20] ^= 1
            try Data(salted).write(to: URL(fileURLWithPath: file.path))
            #expect { try KeyFile.read(at: file.path).open(passphrase: "pass") } throws: {
                ($0 as? VaultError)?.code == .wrongPassphrase
            }

            try Data(original.prefix(200)).write(to: URL(fileURLWithPath: file.path))
            #expect { try KeyFile.read(at: file.path) } throws: { ($0 as? VaultError)?.code == .truncated }
        }
    }

    @Test func passphrasesAreAddedChangedAndRemovedWithoutTouchingTheDataKey() async throws {
        // scrypt, many times, in a debug build: on a thread of its own, not the shared pool.
        try await DedicatedThread.run { [self] in try body() }
        @Sendable func body() throws {
            let dir = try TemporaryDirectory("keyfile")
            defer { dir.remove() }
            let key = StoreKey.random()
            var file = try KeyFile.make(at: dir.file("r.keys"), passphrase: "first", dataKey: key, kdf: kdf)
            try file.add(kind: .passphrase, kek: file.keyEncryptionKey("recovery"), dataKey: key)
            guard case .replica(let viaRecovery, let recoverySlot) = try file.open(passphrase: "recovery"),
                case .replica(_, let firstSlot) = try file.open(passphrase: "first")
            else {
                Issue.record("a passphrase did not open")
                return
            }
            #expect(viaRecovery == key)
            #expect(recoverySlot != firstSlot)
            try file.replace(slot: firstSlot, kek: file.keyEncryptionKey("second"), dataKey: key)
            #expect(throws: VaultError.self) { try file.open(passphrase: "first") }
            try file.remove(slot: recoverySlot, dataKey: key)
            #expect(throws: VaultError.self) { try file.open(passphrase: "recovery") }
            guard case .replica(_, let onlySlot) = try file.open(passphrase: "second") else {
                Issue.record("the changed passphrase did not open")
                return
            }
            #expect { try file.remove(slot: onlySlot, dataKey: key) } throws: {
                ($0 as? VaultError)?.message.contains("only passphrase") == true
            }
        }
    }

    @Test func theDuressSlotOpensTheDecoyAndTheSwitchLeavesOnlyIt() async throws {
        // scrypt, many times, in a debug build: on a thread of its own, not the shared pool.
        try await DedicatedThread.run { [self] in try body() }
        @Sendable func body() throws {
            let dir = try TemporaryDirectory("keyfile")
            defer { dir.remove() }
            let key = StoreKey.random()
            var file = try KeyFile.make(at: dir.file("r.keys"), passphrase: "real", dataKey: key, kdf: kdf)
            let before = file.bytes.count
            try file.add(kind: .duress, kek: file.keyEncryptionKey("duress"), dataKey: key, decoyName: "Rima")
            #expect(file.bytes.count == before)
            guard case .duress(let decoy, let name, let slot) = try file.open(passphrase: "duress") else {
                Issue.record("the duress passphrase did not open its slot")
                return
            }
            #expect(name == "Rima")
            #expect(decoy != key)
            try file.keepOnly(duressSlot: slot, kek: file.keyEncryptionKey("duress"), decoyKey: decoy)
            #expect(throws: VaultError.self) { try file.open(passphrase: "real") }
            guard case .replica(let now, _) = try file.open(passphrase: "duress") else {
                Issue.record("after the switch the duress passphrase must open the decoy as an ordinary replica")
                return
            }
            #expect(now == decoy)
            #expect(file.slotKinds(dataKey: decoy)?.filter { $0 != .free }.count == 1)
        }
    }

    @Test func aNewPassphraseEqualToTheDuressOneIsRefused() async throws {
        // scrypt, many times, in a debug build: on a thread of its own, not the shared pool.
        try await DedicatedThread.run { [self] in try body() }
        @Sendable func body() throws {
            let dir = try TemporaryDirectory("keyfile")
            defer { dir.remove() }
            let key = StoreKey.random()
            var file = try KeyFile.make(at: dir.file("r.keys"), passphrase: "real", dataKey: key, kdf: kdf)
            try file.add(kind: .duress, kek: file.keyEncryptionKey("duress"), dataKey: key, decoyName: "Rima")
            guard case .replica(_, let slot) = try file.open(passphrase: "real") else {
                Issue.record("the real passphrase did not open")
                return
            }
            #expect(throws: VaultError.self) { try file.replace(slot: slot, kek: file.keyEncryptionKey("duress"), dataKey: key) }
            #expect(throws: VaultError.self) { try file.add(kind: .passphrase, kek: file.keyEncryptionKey("duress"), dataKey: key) }
            guard case .replica = try file.open(passphrase: "real"), case .duress = try file.open(passphrase: "duress") else {
                Issue.record("a refused change altered the slots")
                return
            }
            // The reserved header bytes are checked: they are not covered otherwise.
            try file.create()
            var bytes = file.bytes
            bytes[14] = 1
            try Data(bytes).write(to: URL(fileURLWithPath: file.path))
            #expect { try KeyFile.read(at: file.path) } throws: { ($0 as? VaultError)?.code == .tampered }
        }
    }

    @Test func aSealedBundleOpensOnlyWithItsPassphraseAndUnaltered() async throws {
        // scrypt, many times, in a debug build: on a thread of its own, not the shared pool.
        try await DedicatedThread.run { [self] in try body() }
        @Sendable func body() throws {
            let plain = Array("{\"format\":\"fieldsync-bundle\"}\n".utf8)
            let sealed = try SealedBundle.seal(plain, passphrase: "bundle pass", kdf: kdf)
            #expect(SealedBundle.isSealed(sealed))
            #expect(!sealed.contains(subsequence: Array("fieldsync-bundle\"".utf8)))
            #expect(try SealedBundle.open(sealed, passphrase: "bundle pass", file: "b") == plain)
            #expect(throws: VaultError.self) { try SealedBundle.open(sealed, passphrase: "other", file: "b") }
            var altered = sealed
            altered[altered.count - 20] ^= 1
            #expect(throws: VaultError.self) { try SealedBundle.open(altered, passphrase: "bundle pass", file: "b") }
        }
    }
}
