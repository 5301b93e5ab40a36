import FieldSyncCore
import FieldSyncStore
import FieldSyncTestSupport
import FieldSyncVault
import Foundation
import Testing

/// Encrypted replicas through the built binary: what a seized laptop shows, the passphrase, the
/// agent, wipe, duress, conversion and sealed bundles.
@Suite struct EncryptedReplicaTests {
    let w: CLIWorkspace
    init() throws { w = try CLIWorkspace("encrypted", encrypted: true) }

    static let markers = [
        "TITLEMARKER", "NARRATIVEMARKER", "PSEUDONYMMARKER", "PLACEMARKER", "AUTHORMARKER", "NOTEMARKER", "BUNDLEMARKER",
    ]

    /// Each marker as UTF-8, UTF-16LE and UTF-16BE.
    static func encodings(_ marker: String) -> [[UInt8]] {
        let utf16 = Array(marker.utf16)
        return [
            Array(marker.utf8), utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }, utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] },
        ]
    }

    /// The markers found in any file under `folder`, by file.
    static func hits(under folder: String, markers: [String]) throws -> [String] {
        var found: [String] = []
        let files = try FileManager.default.subpathsOfDirectory(atPath: folder)
        for file in files {
            let path = (folder as NSString).appendingPathComponent(file)
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), !isFolder.boolValue,
                let data = FileManager.default.contents(atPath: path)
            else { continue }
            let bytes = Array(data)
            for marker in markers where encodings(marker).contains(where: { bytes.contains(subsequence: $0) }) {
                found.append("\(marker) in \(file)")
            }
        }
        return found
    }

    /// An encrypted replica of `account` in its own folder, enrolled, unlocked.
    func enrolledReplica(_ name: String, account: String, role: String, server: CLIServer) async throws {
        try FileManager.default.createDirectory(atPath: w.dir.file("vault"), withIntermediateDirectories: true)
        try "\(account) passphrase\n".write(toFile: w.passphraseFile(account), atomically: true, encoding: .utf8)
        try await w.ok(name, "init", "--name", "\(account) AUTHORMARKER", "--passphrase-file", w.passphraseFile(account))
        try await w.ok(name, "unlock", "--for", "5m", "--passphrase-file", w.passphraseFile(account))
        let added = try await w.binary.run(["server", "add-user", account, "--role", role, "--store", server.storePath, "--json"])
        let code = try #require(try added.json()["code"]?.stringValue, "\(added)")
        try await w.ok(name, "enroll", "--server", server.url, "--code", code)
    }

    @Test func nothingTheReplicaHoldsIsOnItsDiskInClear() async throws {
        let server = try await w.startServer()
        let amira = "vault/amira"
        try await enrolledReplica(amira, account: "amira", role: "admin", server: server)
        try await w.initReplica("omar", server: server.url, serverStore: server.storePath)
        let id = try await w.add(
            amira, "--title", "TITLEMARKER at the bakery", "--place", "PLACEMARKER", "--set", "narrative=NARRATIVEMARKER",
            "--set", #"victims+={"pseudonym":"PSEUDONYMMARKER","status":"killed"}"#)
        try await w.ok(amira, "sync")
        try await w.ok("omar", "sync")
        try await w.ok("omar", "edit", id, "--set", "title=Omar's title")
        try await w.ok(amira, "edit", id, "--set", "title=TITLEMARKER second")
        try await w.ok("omar", "sync")
        try await w.ok(amira, "sync")
        let conflicts = try await w.ok(amira, "conflicts", "--json").json()
        let candidate = try #require(conflicts[0]?["conflicts"]?[0]?["candidates"]?[0]?["id"]?.stringValue)
        try await w.ok(amira, "resolve", id, "--pick", "title=\(candidate)", "--note", "NOTEMARKER from the hospital list")
        let other = try await w.add(amira, "--title", "TITLEMARKER to delete")
        try await w.ok(amira, "delete", other)
        _ = try await w.add("omar", "--title", "Shelling", "--set", "narrative=BUNDLEMARKER")
        let bundle = w.dir.file("omar.bundle")
        try await w.ok("omar", "bundle", "export", "--out", bundle)
        try await w.ok(amira, "bundle", "import", bundle)
        try await w.ok(amira, "sync")
        // A backup of an encrypted replica stays encrypted, beside it in the same folder.
        try await w.ok(amira, "backup", "--out", w.dir.file("vault/amira-backup.fieldsync"))
        let status = try await w.ok(amira, "status", "--json").json()
        #expect(status["conflicts"] == 0 && status["records"] == 2 && status["encryption"] == "passphrase", "\(status)")
        #expect(try await w.ok(amira, "list", "--all").stdout.contains("TITLEMARKER"), "the replica itself reads its records")
        await w.lockAll()
        _ = try await w.binary.run(["lock"], store: w.store(amira), environment: w.environment)
        await server.stop()
        let url = server.url.replacingOccurrences(of: "http://", with: "")
        let vault = try FileManager.default.contentsOfDirectory(atPath: w.dir.file("vault")).sorted()
        #expect(vault.contains("amira-backup.fieldsync.keys") && vault.contains("amira.fieldsync.keys"), "\(vault)")
        #expect(try Self.hits(under: w.dir.file("vault"), markers: Self.markers + [url]) == [])
        // The same search finds the markers where they are in clear: the search can fail.
        #expect(try Self.hits(under: w.dir.path, markers: ["NOTEMARKER"]).contains { $0.contains("server.sqlite") })
    }

    @Test func noMarkerIsLeftOnTheRawImageOfTheFilesystem() async throws {
        guard getuid() == 0,
            FileManager.default.isExecutableFile(atPath: "/usr/sbin/mkfs.ext4")
                || FileManager.default.isExecutableFile(atPath: "/sbin/mkfs.ext4")
        else {
            print("EncryptedReplicaTests: skipped the raw-image search: not root, or no mkfs.ext4")
            return
        }
        let image = w.dir.file("disk.img")
        let mountPoint = w.dir.file("mnt")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        @Sendable func shell(_ command: String) -> Int32 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", command]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            guard (try? process.run()) != nil else { return -1 }
            process.waitUntilExit()
            return process.terminationStatus
        }
        let made = await DedicatedThread.run {
            shell("truncate -s 48M '\(image)' && mkfs.ext4 -q -F '\(image)' && mount -o loop '\(image)' '\(mountPoint)'")
        }
        guard made == 0 else {
            print("EncryptedReplicaTests: skipped the raw-image search: no loop device could be mounted here")
            return
        }
        var mounted = true
        defer { if mounted { _ = shell("umount '\(mountPoint)'") } }
        let store = (mountPoint as NSString).appendingPathComponent("rima.fieldsync")
        let pass = w.passphraseFile("rima")
        try "rima passphrase\n".write(toFile: pass, atomically: true, encoding: .utf8)
        func run(_ arguments: [String]) async throws {
            let result = try await w.binary.run(arguments, store: store, environment: w.environment)
            #expect(result.status == 0, "\(arguments): \(result)")
        }
        try await run(["init", "--name", "AUTHORMARKER", "--passphrase-file", pass])
        try await run(["unlock", "--for", "2m", "--passphrase-file", pass])
        try await run(["add", "--title", "TITLEMARKER", "--place", "PLACEMARKER", "--set", "narrative=NARRATIVEMARKER"])
        let id = try await w.binary.run(["add", "--title", "TITLEMARKER two"], store: store, environment: w.environment).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try await run(["edit", id, "--set", "narrative=NARRATIVEMARKER again"])
        try await run(["delete", id])
        try await run(["lock"])
        #expect(await DedicatedThread.run { shell("umount '\(mountPoint)'") } == 0)
        mounted = false
        let raw = Array(try Data(contentsOf: URL(fileURLWithPath: image)))
        let found = ["TITLEMARKER", "PLACEMARKER", "NARRATIVEMARKER", "AUTHORMARKER"].filter { marker in
            Self.encodings(marker).contains { raw.contains(subsequence: $0) }
        }
        #expect(found == [], "in clear on the raw device: \(found)")
    }

    @Test func aWrongPassphraseAndADamagedKeyFileFailInOneLineAndChangeNothing() async throws {
        try await w.initReplica("rima")
        try await w.ok("rima", "lock")
        let store = w.store("rima")
        let keys = store + ".keys"
        let wrong = w.dir.file("wrong.pass")
        try "not it\n".write(toFile: wrong, atomically: true, encoding: .utf8)
        let before = try Data(contentsOf: URL(fileURLWithPath: store))
        let original = try Data(contentsOf: URL(fileURLWithPath: keys))

        func refused(_ mention: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            let result = try await w.run("rima", ["add", "--title", "x", "--passphrase-file", w.passphraseFile("rima")])
            #expect(result.status == 1, "\(result)", sourceLocation: sourceLocation)
            #expect(result.stderr.contains(mention), "\(result)", sourceLocation: sourceLocation)
            #expect(result.stderr.split(separator: "\n").count == 1, "\(result)", sourceLocation: sourceLocation)
            #expect(try Data(contentsOf: URL(fileURLWithPath: store)) == before, sourceLocation: sourceLocation)
        }
        let result = try await w.run("rima", ["add", "--title", "x", "--passphrase-file", wrong])
        #expect(result.status == 1 && result.stderr.contains("wrong passphrase"), "\(result)")
        #expect(result.stderr.split(separator: "\n").count == 1)

        var lowered = Array(original)
        lowered[9] = 12
        try Data(lowered).write(to: URL(fileURLWithPath: keys))
        try await refused("below the minimum")
        var salted = Array(original)
        salted[30] ^= 0x40
        try Data(salted).write(to: URL(fileURLWithPath: keys))
        try await refused("wrong passphrase")
        try Data(original.prefix(100)).write(to: URL(fileURLWithPath: keys))
        try await refused("truncated")
        try FileManager.default.removeItem(atPath: keys)
        let missing = try await w.run("rima", ["status", "--passphrase-file", w.passphraseFile("rima")])
        #expect(missing.status == 1 && missing.stderr.contains("encrypted replica"), "\(missing)")
        try original.write(to: URL(fileURLWithPath: keys))
        try await w.ok("rima", "status", "--passphrase-file", w.passphraseFile("rima"))
        // No terminal, no passphrase, no agent: at once, one line.
        let locked = try await w.run("rima", "list")
        #expect(locked.status == 1 && locked.stderr.contains("no terminal to ask on"), "\(locked)")
        await w.lockAll()
    }

    @Test func theAgentForgetsTheKeyOnLockAndOnTimeoutAndAnswersOnlyItsOwner() async throws {
        try await w.initReplica("rima")
        let sockets = try FileManager.default.contentsOfDirectory(atPath: w.dir.file("run/fieldsync"))
        #expect(sockets.count == 1, "\(sockets)")
        let socket = w.dir.file("run/fieldsync/\(sockets[0])")
        #expect(try FileManager.default.attributesOfItem(atPath: socket)[.posixPermissions] as? Int == 0o600)
        #expect(try FileManager.default.attributesOfItem(atPath: w.dir.file("run/fieldsync"))[.posixPermissions] as? Int == 0o700)
        try await w.ok("rima", "add", "--title", "while unlocked")
        #expect(try await w.ok("rima", "lock").stdout.contains("forgot"))
        let afterLock = try await w.run("rima", "list")
        #expect(afterLock.status == 1 && afterLock.stderr.contains("locked"), "\(afterLock)")
        #expect(!FileManager.default.fileExists(atPath: socket), "the socket goes with the key")

        // The agent's clock starts before unlock returns, so 21 s after that it has expired; 20 s is
        // ample for one list even on a loaded machine.
        try await w.ok("rima", "unlock", "--for", "20s", "--passphrase-file", w.passphraseFile("rima"))
        let unlocked = ContinuousClock.now
        try await w.ok("rima", "list")
        try await Task.sleep(until: unlocked + .seconds(21))
        let afterTimeout = try await w.run("rima", "list")
        #expect(afterTimeout.status == 1 && afterTimeout.stderr.contains("locked"), "\(afterTimeout)")
        let bad = try await w.run("rima", "unlock", "--for", "3d")
        #expect(bad.status == 1 && bad.stderr.contains("at most 24h"), "\(bad)")
        await w.lockAll()
    }

    @Test func wipeDestroysTheKeysAndLeavesNothingAPassphraseOpens() async throws {
        try await w.initReplica("rima")
        try await w.ok("rima", "add", "--title", "not yet synced")
        let store = w.store("rima")
        // Hard links keep the wiped files' blocks readable, as an examiner's disk image would.
        try FileManager.default.linkItem(atPath: store, toPath: w.dir.file("kept.db"))
        try FileManager.default.linkItem(atPath: store + ".keys", toPath: w.dir.file("kept.db.keys"))
        let asked = try await w.run("rima", "wipe")
        #expect(asked.status == 1 && asked.stderr.contains("1 revision and 0 attachments have not reached"), "\(asked)")
        #expect(FileManager.default.fileExists(atPath: store + ".keys"), "not confirmed: nothing wiped")
        let wiped = try await w.ok("rima", "wipe", "--yes")
        #expect(wiped.stdout.contains("every key slot destroyed"), "\(wiped)")
        #expect(!FileManager.default.fileExists(atPath: store) && !FileManager.default.fileExists(atPath: store + ".keys"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: w.dir.file("run/fieldsync")).isEmpty, "the agent forgot the key")
        // The key file's own blocks now hold random bytes: the right passphrase opens nothing.
        let remains = try await w.binary.run(
            ["status", "--passphrase-file", w.passphraseFile("rima")], store: w.dir.file("kept.db"), environment: w.environment)
        #expect(remains.status == 1 && remains.stderr.contains("not a FieldSync key file"), "\(remains)")
    }

    @Test func theDuressPassphraseOpensAnEmptyReplicaAndTheRealDataIsGone() async throws {
        try await w.initReplica("rima")
        try await w.initReplica("fresh")
        try await w.ok("rima", "add", "--title", "TITLEMARKER the real work")
        let keys = w.store("rima") + ".keys"
        let size = try FileManager.default.attributesOfItem(atPath: keys)[.size] as? Int
        let duress = w.dir.file("duress.pass")
        try "the checkpoint phrase\n".write(toFile: duress, atomically: true, encoding: .utf8)
        try await w.ok(
            "rima", "passphrase", "add", "--duress", "--new-passphrase-file", duress, "--passphrase-file", w.passphraseFile("rima"))
        let viaAgent = try await w.run("rima", ["passphrase", "add", "--new-passphrase-file", duress])
        #expect(viaAgent.status == 1 && viaAgent.stderr.contains("no terminal"), "the agent alone adds no passphrase: \(viaAgent)")
        #expect(try FileManager.default.attributesOfItem(atPath: keys)[.size] as? Int == size, "a duress slot shows in no size")
        try await w.ok("rima", "lock")
        let created = ReplicaStore.creationTime(at: w.store("rima"))

        let opened = try await w.ok("rima", "status", "--json", "--passphrase-file", duress).json()
        #expect(created != nil && ReplicaStore.creationTime(at: w.store("rima")) == created, "the decoy keeps the creation time")
        #expect(opened["records"] == 0 && opened["revisions"] == 0 && opened["name"] == "rima", "\(opened)")
        #expect(opened["encryption"] == "passphrase")
        let real = try await w.run("rima", ["list", "--passphrase-file", w.passphraseFile("rima")])
        #expect(real.status == 1 && real.stderr.contains("wrong passphrase"), "\(real)")
        #expect(try await w.ok("rima", "list", "--passphrase-file", duress).stdout.contains("no records"))
        // Sizes: the key file as before, the replica as a fresh one.
        #expect(try FileManager.default.attributesOfItem(atPath: keys)[.size] as? Int == size)
        let decoySize = try FileManager.default.attributesOfItem(atPath: w.store("rima"))[.size] as? Int
        let freshSize = try FileManager.default.attributesOfItem(atPath: w.store("fresh"))[.size] as? Int
        #expect(decoySize == freshSize)
        #expect(try Self.hits(under: w.dir.path, markers: ["TITLEMARKER"]) == [])
        await w.lockAll()
    }

    @Test func passphrasesAreChangedAddedAndRemoved() async throws {
        try await w.initReplica("rima")
        try await w.ok("rima", "lock")
        let first = w.passphraseFile("rima")
        let second = w.dir.file("second.pass")
        let recovery = w.dir.file("recovery.pass")
        try "second passphrase\n".write(toFile: second, atomically: true, encoding: .utf8)
        try "HQ recovery passphrase\n".write(toFile: recovery, atomically: true, encoding: .utf8)
        try await w.ok("rima", "passphrase", "add", "--passphrase-file", first, "--new-passphrase-file", recovery)
        try await w.ok("rima", "passphrase", "change", "--passphrase-file", first, "--new-passphrase-file", second)
        #expect(try await w.run("rima", ["status", "--passphrase-file", first]).status == 1)
        try await w.ok("rima", "status", "--passphrase-file", second)
        try await w.ok("rima", "status", "--passphrase-file", recovery)
        try await w.ok("rima", "passphrase", "remove", "--passphrase-file", recovery)
        #expect(try await w.run("rima", ["status", "--passphrase-file", recovery]).status == 1)
        let last = try await w.run("rima", ["passphrase", "remove", "--passphrase-file", second])
        #expect(last.status == 1 && last.stderr.contains("only passphrase"), "\(last)")
        let noNew = try await w.run("rima", ["passphrase", "add", "--passphrase-file", second])
        #expect(noNew.status == 1 && noNew.stderr.contains("no terminal"), "\(noNew)")
        await w.lockAll()
    }

    @Test func encryptConvertsAPlaintextReplica() async throws {
        try await w.ok("plain", "init", "--name", "AUTHORMARKER", "--plaintext")
        let id = try await w.add("plain", "--title", "TITLEMARKER", "--set", "narrative=NARRATIVEMARKER")
        let before = try await w.ok("plain", "list", "--all", "--json").stdout
        #expect(try await w.ok("plain", "status").stdout.contains("encryption: none"))
        #expect(try Self.hits(under: w.dir.path, markers: ["NARRATIVEMARKER"]) != [], "in clear before")
        let pass = w.passphraseFile("plain")
        try "plain passphrase\n".write(toFile: pass, atomically: true, encoding: .utf8)
        let converted = try await w.ok("plain", "encrypt", "--passphrase-file", pass)
        #expect(converted.stderr.contains("SSD"), "\(converted)")
        #expect(try await w.ok("plain", "list", "--all", "--json", "--passphrase-file", pass).stdout == before)
        #expect(try await w.ok("plain", "status", "--passphrase-file", pass).stdout.contains("encryption: passphrase"))
        try await w.ok("plain", "edit", id, "--set", "title=after", "--passphrase-file", pass)
        #expect(try Self.hits(under: w.dir.path, markers: ["NARRATIVEMARKER", "AUTHORMARKER"]) == [])
        let again = try await w.run("plain", ["encrypt", "--passphrase-file", pass])
        #expect(again.status == 1 && again.stderr.contains("already encrypted"), "\(again)")
        await w.lockAll()
    }

    /// A conversion cut short after its key file was written (the sealed copy beside the plaintext)
    /// is finished by running `encrypt` again with that passphrase; nothing is lost.
    @Test func anInterruptedEncryptIsFinishedByRunningItAgain() async throws {
        try await w.ok("plain", "init", "--name", "AUTHORMARKER", "--plaintext")
        _ = try await w.add("plain", "--title", "TITLEMARKER")
        let before = try await w.ok("plain", "list", "--all", "--json").stdout
        let path = w.store("plain")
        let key = StoreKey.random()
        try ReplicaStore.writeSealedCopy(of: path, to: path + ".encrypting", key: key)
        try KeyFile.make(
            at: KeyFile.path(forStore: path), passphrase: "plain passphrase", dataKey: key,
            kdf: PassphraseKDF(log2N: PassphraseKDF.minimumLog2N)
        ).create()
        try "plain passphrase\n".write(toFile: w.passphraseFile("plain"), atomically: true, encoding: .utf8)
        let stuck = try await w.run("plain", ["list", "--passphrase-file", w.passphraseFile("plain")])
        #expect(stuck.status == 1 && stuck.stderr.contains("encrypt"), "\(stuck)")
        let finished = try await w.ok("plain", "encrypt", "--passphrase-file", w.passphraseFile("plain"))
        #expect(finished.stdout.contains("finished encrypting"), "\(finished)")
        #expect(try await w.ok("plain", "list", "--all", "--json", "--passphrase-file", w.passphraseFile("plain")).stdout == before)
        #expect(!FileManager.default.fileExists(atPath: path + ".encrypting"))
        #expect(try Self.hits(under: w.dir.path, markers: ["TITLEMARKER", "AUTHORMARKER"]) == [])
    }

    @Test func wipingAPlaintextReplicaOverwritesIt() async throws {
        try await w.ok("plain", "init", "--name", "p", "--plaintext")
        _ = try await w.add("plain", "--title", "TITLEMARKER")
        try FileManager.default.linkItem(atPath: w.store("plain"), toPath: w.dir.file("kept.db"))
        let wiped = try await w.ok("plain", "wipe", "--yes")
        #expect(wiped.stdout.contains("overwritten with zeros"), "\(wiped)")
        #expect(!FileManager.default.fileExists(atPath: w.store("plain")))
        #expect(try Data(contentsOf: URL(fileURLWithPath: w.dir.file("kept.db"))).allSatisfy { $0 == 0 }, "the blocks were zeroed")
    }

    @Test func bundlesFromAnEncryptedReplicaAreSealedUnlessAskedOtherwise() async throws {
        try await w.initReplica("rima")
        try await w.initReplica("omar")
        _ = try await w.add("rima", "--title", "TITLEMARKER on the stick")
        let sealed = w.dir.file("sealed.bundle")
        let noPassphrase = try await w.binary.run(
            ["bundle", "export", "--out", sealed], store: w.store("rima"), environment: w.environment)
        #expect(noPassphrase.status == 1 && noPassphrase.stderr.contains("no terminal"), "\(noPassphrase)")
        try await w.ok("rima", "bundle", "export", "--out", sealed)
        #expect(try Self.hits(under: w.dir.path, markers: ["TITLEMARKER"]) == [])
        let wrong = w.dir.file("wrong.pass")
        try "wrong\n".write(toFile: wrong, atomically: true, encoding: .utf8)
        let refused = try await w.run("omar", ["bundle", "import", sealed, "--bundle-passphrase-file", wrong])
        #expect(refused.status == 1 && refused.stderr.contains("nothing was imported"), "\(refused)")
        #expect(try await w.ok("omar", "status", "--json").json()["revisions"] == 0)
        try await w.ok("omar", "bundle", "import", sealed)
        #expect(try await w.ok("omar", "status", "--json").json()["records"] == 1)
        let plain = w.dir.file("plain.bundle")
        try await w.ok("rima", "bundle", "export", "--out", plain, "--plaintext-bundle")
        #expect(try Self.hits(under: w.dir.path, markers: ["TITLEMARKER"]).contains { $0.hasSuffix("plain.bundle") })
        await w.lockAll()
    }
}
