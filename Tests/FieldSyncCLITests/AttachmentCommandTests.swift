import FieldSyncBlobs
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore
import FieldSyncTestSupport
import Foundation
import Testing

/// Evidence attachments end to end (#16): the built `fieldsync` binary against a real `fieldsync
/// serve` on 127.0.0.1, with a proxy that cuts and slows the link. Runs on encrypted replicas
/// under `FIELDSYNC_TEST_ENCRYPTED=1`.
@Suite struct AttachmentCommandTests {
    let w: CLIWorkspace
    init() throws { w = try CLIWorkspace("attachments") }

    var serverStore: String { w.dir.file("central.sqlite") }

    func file(_ name: String, _ count: Int, seed: UInt64) throws -> (path: String, bytes: [UInt8]) {
        let bytes = Fixtures.randomBytes(count, seed: seed)
        let path = w.dir.file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return (path, bytes)
    }

    func sha(_ bytes: [UInt8]) -> String { ContentHash.hex(of: bytes) }

    /// Runs the binary and has the proxy kill it (SIGKILL, from its own thread) once `threshold`
    /// bytes went through it one way; whether the kill ended it, and its stderr.
    func killedAt(_ threshold: Int, toClients: Bool = false, by proxy: WeakLinkProxy, _ arguments: [String]) async throws -> (
        signalled: Bool, stderr: String
    ) {
        let process = Process()
        process.executableURL = w.binary.url
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(w.environment) { $1 }
        let log = w.dir.file("killed-\(UUID().uuidString.prefix(8)).err")
        FileManager.default.createFile(atPath: log, contents: nil)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: log)
        try process.run()
        let pid = process.processIdentifier
        proxy.whenBytes(reach: threshold, toClients: toClients) { kill(pid, SIGKILL) }
        // Waited for without blocking a thread of the shared pool (in-process servers of other
        // suites need them); the kill itself comes from the proxy's thread.
        while process.isRunning { try await Task.sleep(nanoseconds: 20_000_000) }
        return (process.terminationReason == .uncaughtSignal, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    func serverBlob(_ sha: String) -> String { "\(serverStore).blobs/objects/\(sha.prefix(2))/\(sha)" }

    func attachments(_ name: String, _ id: String) async throws -> [JSONValue] {
        try #require(try await w.ok(name, "attachment", "list", id, "--json").json().arrayValue)
    }

    @Test func attachSyncAndFetchOnAnotherReplicaGivesTheSameBytes() async throws {
        let server = try await ServerProcess.start(binary: w.binary, store: serverStore)
        try await w.initReplica("rima", server: server.url, serverStore: serverStore)
        try await w.initReplica("omar", server: server.url, serverStore: serverStore)
        try await w.initReplica("lina", server: server.url, serverStore: serverStore)
        let id = try await w.add("rima", "--title", "Shelling of the market")
        let photo = try file("market.jpg", (5 << 19) + 77, seed: 1)
        let attached = try #require(
            try await w.ok(
                "rima", "attach", id, photo.path, "--caption", "The stalls after the strike", "--captured", "2025-03-07", "--json"
            )
            .json().arrayValue)
        #expect(attached.count == 1)
        #expect(attached[0]["sha256"]?.stringValue == sha(photo.bytes))
        #expect(attached[0]["size"] == .int(Int64(photo.bytes.count)))
        #expect(attached[0]["media_type"] == "image/jpeg")
        #expect(attached[0]["record"]?.stringValue == id)
        let revisions = try await w.ok("rima", "status", "--json").json()["revisions"]
        let again = try await w.ok(
            "rima", "attachment", "add", id, photo.path, "--caption", "The stalls after the strike", "--captured", "2025-03-07")
        #expect(again.stdout.contains("already attached"), "\(again)")
        #expect(try await w.ok("rima", "status", "--json").json()["revisions"] == revisions, "no second revision")
        #expect(try await attachments("rima", id)[0]["receipt"] == "none")

        let synced = try await w.ok("rima", "sync", "--json").json()
        #expect(synced["attachments"]?["uploaded"] == 1)
        #expect(synced["attachments"]?["receipts"] == 1)
        let listed = try await attachments("rima", id)
        #expect(listed[0]["receipt"] == "verified")
        #expect(listed[0]["local"] == "complete")
        #expect(listed[0]["caption"] == "The stalls after the strike")
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: serverBlob(sha(photo.bytes))))) == photo.bytes)

        // Omar pulls the record but not the bytes (a seized laptop holds less), then fetches them.
        _ = try await w.ok("omar", "sync")
        #expect(try await attachments("omar", id)[0]["local"] == "absent")
        let out = w.dir.file("fetched.jpg")
        _ = try await w.ok("omar", "attachment", "get", String(id.prefix(8)), String(sha(photo.bytes).prefix(10)), "--out", out)
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: out))) == photo.bytes)
        #expect(try await attachments("omar", id)[0]["local"] == "complete")
        #expect(try await attachments("omar", id)[0]["receipt"] == "verified")
        let refused = try await w.run("omar", "attachment", "get", id, String(sha(photo.bytes).prefix(6)), "--out", out)
        #expect(refused.status == 1 && refused.stderr.contains("exists"), "an existing file is never overwritten")

        // Lina takes everything with --attachments all.
        let all = try await w.ok("lina", "sync", "--attachments", "all", "--json").json()
        #expect(all["attachments"]?["downloaded"] == 1)
        #expect(try await attachments("lina", id)[0]["local"] == "complete")
        await w.lockAll()
        _ = await server.stop()
    }

    /// `sync` killed three times in the middle of an upload over a slow link, then run to the end:
    /// at most what was in flight is sent again.
    @Test func aSyncKilledMidUploadResumesWhereTheBytesStopped() async throws {
        let server = try await ServerProcess.start(binary: w.binary, store: serverStore)
        try await w.initReplica("rima", server: server.url, serverStore: serverStore)
        let id = try await w.add("rima", "--title", "Detentions at the checkpoint")
        let video = try file("checkpoint.mp4", 12 << 20, seed: 2)
        _ = try await w.ok("rima", "attach", id, video.path)
        let port = try #require(URL(string: server.url)?.port)
        let proxy = try WeakLinkProxy(targetPort: port, bytesPerSecond: 3 << 19)
        defer { proxy.stop() }
        for threshold in [2 << 20, 5 << 20, 8 << 20] {
            let killed = try await killedAt(
                threshold, by: proxy, ["sync", "--server", proxy.url, "--store", w.store("rima"), "--retries", "0"])
            #expect(killed.signalled, "killed in the middle of the upload, at \(proxy.bytesFromClients) bytes: \(killed.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: serverBlob(sha(video.bytes))), "not complete before the last sync")
        let synced = try await w.ok("rima", "sync", "--server", proxy.url, "--json").json()
        #expect(synced["attachments"]?["receipts"] == 1)
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: serverBlob(sha(video.bytes))))) == video.bytes)
        // Bytes in flight at each kill may go twice; the rest never does.
        let sent = proxy.bytesFromClients
        #expect(sent < video.bytes.count + (3 << 20), "sent \(sent) bytes for a \(video.bytes.count)-byte file")
        await w.lockAll()
        _ = await server.stop()
    }

    /// `attachment get` killed twice in the middle of a fetch over a slow link: the chunks already
    /// here are kept, and the last run fetches only the rest.
    @Test func aFetchKilledMidwayResumesFromTheChunksAlreadyHere() async throws {
        let server = try await ServerProcess.start(binary: w.binary, store: serverStore)
        try await w.initReplica("rima", server: server.url, serverStore: serverStore)
        let proxy = try WeakLinkProxy(targetPort: try #require(URL(string: server.url)?.port), bytesPerSecond: 3 << 19)
        defer { proxy.stop() }
        try await w.initReplica("omar", server: proxy.url, serverStore: serverStore)
        let id = try await w.add("rima", "--title", "Executions at the quarry")
        let video = try file("quarry.mp4", 10 << 20, seed: 12)
        _ = try await w.ok("rima", "attach", id, video.path)
        _ = try await w.ok("rima", "sync")
        _ = try await w.ok("omar", "sync")
        let out = w.dir.file("quarry-copy.mp4")
        for threshold in [3 << 20, 6 << 20] {
            let killed = try await killedAt(
                threshold, toClients: true, by: proxy,
                ["attachment", "get", id, sha(video.bytes), "--out", out, "--store", w.store("omar"), "--retries", "0"])
            #expect(killed.signalled, "killed in the middle of the fetch, at \(proxy.bytesToClients) bytes: \(killed.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out), "nothing at --out until the whole file is checked")
        }
        #expect(try await attachments("omar", id)[0]["local"] == "partial")
        _ = try await w.ok("omar", "attachment", "get", id, sha(video.bytes), "--out", out)
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: out))) == video.bytes)
        // Each kill loses at most the chunk on the wire (1 MiB) and what the link buffered.
        #expect(proxy.bytesToClients < video.bytes.count + (3 << 20), "fetched \(proxy.bytesToClients) bytes for \(video.bytes.count)")
        await w.lockAll()
        _ = await server.stop()
    }

    /// A link that drops the connection after every 3 MiB: the upload completes within the retries.
    @Test func aLinkThatDropsEveryFewMegabytesStillCarriesTheWholeFile() async throws {
        let server = try await ServerProcess.start(binary: w.binary, store: serverStore)
        try await w.initReplica("rima", server: server.url, serverStore: serverStore)
        let id = try await w.add("rima", "--title", "Looting of the pharmacy")
        let scan = try file("ledger.pdf", 10 << 20, seed: 3)
        _ = try await w.ok("rima", "attach", id, scan.path)
        let proxy = try WeakLinkProxy(targetPort: try #require(URL(string: server.url)?.port), dropAfter: 3 << 20)
        defer { proxy.stop() }
        let synced = try await w.ok("rima", "sync", "--server", proxy.url, "--retries", "5", "--json").json()
        #expect(synced["attachments"]?["receipts"] == 1)
        #expect((synced["attachments"]?["retries"]?.intValue ?? 0) >= 3, "\(synced)")
        #expect(proxy.drops >= 3)
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: serverBlob(sha(scan.bytes))))) == scan.bytes)
        let sent = Double(proxy.bytesFromClients)
        #expect(sent <= 1.1 * Double(scan.bytes.count), "sent \(sent) bytes for \(scan.bytes.count)")
        #expect(try await attachments("rima", id)[0]["receipt"] == "verified")
        await w.lockAll()
        _ = await server.stop()
    }

    @Test func aChunkRottenOnTheServerIsRefusedByGetAndNamedByVerify() async throws {
        let server = try await ServerProcess.start(binary: w.binary, store: serverStore)
        try await w.initReplica("rima", server: server.url, serverStore: serverStore)
        try await w.initReplica("omar", server: server.url, serverStore: serverStore)
        let id = try await w.add("rima", "--title", "Destroyed clinic")
        let photo = try file("clinic.jpg", 3 << 20, seed: 4)
        _ = try await w.ok("rima", "attach", id, photo.path)
        _ = try await w.ok("rima", "sync")
        _ = try await w.ok("omar", "sync")
        let blob = serverBlob(sha(photo.bytes))
        chmod(blob, 0o600)
        let handle = try #require(FileHandle(forUpdatingAtPath: blob))
        try handle.seek(toOffset: (1 << 20) + 99)
        handle.write(Data([0xA5 ^ photo.bytes[(1 << 20) + 99]]))
        try handle.close()
        let out = w.dir.file("clinic-copy.jpg")
        let refused = try await w.run("omar", "attachment", "get", id, sha(photo.bytes), "--out", out)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("damaged"), "\(refused)")
        #expect(!FileManager.default.fileExists(atPath: out), "no partial or wrong file")
        _ = await server.stop()
        let verified = try await w.binary.run(["verify", "--store", serverStore, "--json"])
        #expect(verified.status == 1)
        let report = try verified.json()
        #expect(report["attachments"]?["damaged"] == .array([.string(sha(photo.bytes))]))
        #expect(report["problems"]?.arrayValue?.contains { $0.stringValue?.contains(sha(photo.bytes)) == true } == true)
        #expect(try await w.ok("rima", "verify", "--json").json()["sound"] == true, "Rima's own copy is sound")
        await w.lockAll()
    }

    @Test func twoDocumentersAttachingTheSameFileWriteNoConflictAndOneBlob() async throws {
        let server = try await ServerProcess.start(binary: w.binary, store: serverStore)
        try await w.initReplica("rima", server: server.url, serverStore: serverStore)
        try await w.initReplica("omar", server: server.url, serverStore: serverStore)
        let id = try await w.add("rima", "--title", "Summary execution at the bridge")
        _ = try await w.ok("rima", "sync")
        _ = try await w.ok("omar", "sync")
        // Both took the same video off a witness's phone, offline.
        let video = try file("witness.mp4", (3 << 20) + 5, seed: 5)
        _ = try await w.ok("rima", "attach", id, video.path)
        _ = try await w.ok("omar", "attach", id, video.path)
        _ = try await w.ok("rima", "sync")
        let second = try await w.ok("omar", "sync", "--json").json()
        #expect(second["attachments"]?["uploaded_bytes"] == 0, "the central node already had every byte")
        #expect(second["attachments"]?["receipts"] == 1)
        _ = try await w.ok("rima", "sync")
        for name in ["rima", "omar"] {
            #expect(try await w.ok(name, "conflicts", "--json").json().arrayValue?.isEmpty == true, "equal values are no conflict")
            let listed = try await attachments(name, id)
            #expect(listed.count == 1)
            #expect(listed[0]["receipt"] == "verified")
        }
        let objects = try FileManager.default.subpathsOfDirectory(atPath: "\(serverStore).blobs/objects").filter { $0.count > 3 }
        #expect(objects.count == 1)
        await w.lockAll()
        _ = await server.stop()
    }

    @Test func pruneDeletesOnlyCopiesWithAVerifiedReceipt() async throws {
        let server = try await ServerProcess.start(binary: w.binary, store: serverStore)
        try await w.initReplica("rima", server: server.url, serverStore: serverStore)
        let id = try await w.add("rima", "--title", "Burned houses")
        let photo = try file("houses.jpg", 1_500_000, seed: 6)
        _ = try await w.ok("rima", "attach", id, photo.path)
        let before = try await w.ok("rima", "attachment", "prune", "--json").json()
        #expect(before["pruned"]?.arrayValue?.isEmpty == true)
        #expect(before["kept"]?.arrayValue?.count == 1)
        #expect(try await attachments("rima", id)[0]["local"] == "complete")
        _ = try await w.ok("rima", "sync")
        let after = try await w.ok("rima", "attachment", "prune", "--json").json()
        #expect(after["pruned"]?.arrayValue?.count == 1)
        #expect(after["freed_bytes"]?.intValue ?? 0 >= Int64(photo.bytes.count))
        let listed = try await attachments("rima", id)
        #expect(listed[0]["local"] == "absent")
        #expect(listed[0]["receipt"] == "verified")
        // Gone from the laptop, still the central node's: fetched back on demand.
        let out = w.dir.file("houses-back.jpg")
        _ = try await w.ok("rima", "attachment", "get", id, sha(photo.bytes), "--out", out)
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: out))) == photo.bytes)
        await w.lockAll()
        _ = await server.stop()
    }

    /// A receipt signed by anyone but the pinned central node key is `invalid`, and prune keeps the copy.
    @Test func aForgedReceiptIsInvalidAndPruneKeepsTheCopy() async throws {
        let plain = try CLIWorkspace("forged-receipt", encrypted: false)
        let server = try await ServerProcess.start(binary: plain.binary, store: plain.dir.file("central.sqlite"))
        try await plain.initReplica("rima", server: server.url, serverStore: plain.dir.file("central.sqlite"))
        let id = try await plain.add("rima", "--title", "Burned houses")
        let photo = plain.dir.file("houses.jpg")
        let bytes = Fixtures.randomBytes(200_000, seed: 7)
        try Data(bytes).write(to: URL(fileURLWithPath: photo))
        _ = try await plain.ok("rima", "attach", id, photo)
        _ = try await server.stop()
        // A modified client (or a hostile insider with the laptop) signs a receipt with its own key.
        let store = try ReplicaStore.open(at: plain.store("rima"))
        let manifest = try #require(try store.localManifest(of: sha(bytes)))
        let forged = try AttachmentReceipt.issue(
            sha256: manifest.sha256, size: manifest.size, manifest: manifest.hash, received: 1, node: try store.identity().node,
            account: "rima", by: DeviceKey.generate())
        try store.storeAttachmentReceipt(forged)
        try store.close()
        let listed = try #require(try await plain.ok("rima", "attachment", "list", id, "--json").json().arrayValue)
        #expect(listed[0]["receipt"] == "invalid")
        let pruned = try await plain.ok("rima", "attachment", "prune", "--json").json()
        #expect(pruned["pruned"]?.arrayValue?.isEmpty == true)
        #expect(pruned["kept"]?.arrayValue?.first?["reason"] == "the receipt does not verify")
        let verify = try await plain.run("rima", "verify")
        #expect(verify.status == 1 && verify.stdout.contains("receipt"), "\(verify)")
    }

    @Test func bundlesCarryAttachmentsAndPartialSidecarsAddUp() async throws {
        try await w.initReplica("rima")
        try await w.initReplica("omar")
        let id = try await w.add("rima", "--title", "Mass grave near the quarry")
        let video = try file("quarry.mp4", (4 << 20) + 3, seed: 8)
        let note = try file("note.txt", 900, seed: 9)
        _ = try await w.ok("rima", "attach", id, video.path, note.path)
        let bundle = w.dir.file("rima.bundle")
        let exported = try await w.ok(
            "rima", "bundle", "export", "--out", bundle, "--with-attachments", "--attachment-part-size", "1600000")
        #expect(exported.stdout.contains("6 chunks of 2 attachments"), "\(exported)")
        let parts = BlobParts.parts(in: bundle + ".attachments")
        #expect(parts.count == 4, "one full chunk per part; the small ones share the last")
        if w.encrypted {
            let raw = [UInt8](try Data(contentsOf: URL(fileURLWithPath: parts[0])))
            #expect(!raw.contains(subsequence: Array(video.bytes[1000..<1064])), "a sealed bundle's parts are sealed too")
        }
        // The stick held all but the second part on the first trip.
        let aside = w.dir.file("aside")
        try FileManager.default.createDirectory(atPath: aside, withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: parts[1], toPath: aside + "/" + (parts[1] as NSString).lastPathComponent)
        let first = try await w.ok("omar", "bundle", "import", bundle, "--json").json()
        #expect(first["attachments"]?["partial"] == 1)
        #expect(first["attachments"]?["complete"] == 1)
        let listed = try await attachments("omar", id)
        #expect(Set(listed.compactMap { $0["local"]?.stringValue }) == ["partial", "complete"])
        let out = w.dir.file("quarry-copy.mp4")
        let early = try await w.run("omar", "attachment", "get", id, sha(video.bytes), "--out", out)
        #expect(early.status == 1, "partial and not enrolled: nothing to fetch from")
        #expect(!FileManager.default.fileExists(atPath: out))
        // The second trip brings the missing part: the imports add up.
        try FileManager.default.moveItem(atPath: aside + "/" + (parts[1] as NSString).lastPathComponent, toPath: parts[1])
        _ = try await w.ok("omar", "bundle", "import", bundle)
        #expect(try await attachments("omar", id).allSatisfy { $0["local"] == "complete" })
        _ = try await w.ok("omar", "attachment", "get", id, sha(video.bytes), "--out", out)
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: out))) == video.bytes)
        #expect(try await w.ok("omar", "verify", "--json").json()["attachments"]?["chunks"] == 6)
        await w.lockAll()
    }

    @Test func sidecarChunksNoSignedRevisionReferencesAreIgnored() async throws {
        let plain = try CLIWorkspace("unreferenced-sidecar", encrypted: false)
        try await plain.initReplica("rima")
        try await plain.initReplica("omar")
        let id = try await plain.add("rima", "--title", "Raid")
        let photo = plain.dir.file("raid.jpg")
        try Data(Fixtures.randomBytes(300_000, seed: 10)).write(to: URL(fileURLWithPath: photo))
        _ = try await plain.ok("rima", "attach", id, photo)
        let bundle = plain.dir.file("rima.bundle")
        _ = try await plain.ok("rima", "bundle", "export", "--out", bundle, "--with-attachments")
        // Omar imports the bytes under a bundle that carries none of Rima's revisions.
        let empty = plain.dir.file("omar.bundle")
        _ = try await plain.ok("omar", "bundle", "export", "--out", empty)
        let imported = try await plain.ok("omar", "bundle", "import", empty, "--attachments", bundle + ".attachments", "--json").json()
        #expect(imported["attachments"]?["chunks"] == 0)
        #expect(imported["attachments"]?["ignored"] == 1)
        let omar = try ReplicaStore.open(at: plain.store("omar"))
        #expect(try omar.localAttachments().isEmpty, "no manifest or chunk kept")
        try omar.close()
    }

    @Test func verifyNamesADamagedLocalChunkAndWipeRemovesTheBlobs() async throws {
        try await w.initReplica("rima")
        let id = try await w.add("rima", "--title", "Shelling")
        let photo = try file("shelling.jpg", 2_000_000, seed: 11)
        _ = try await w.ok("rima", "attach", id, photo.path)
        #expect(try await w.ok("rima", "verify", "--json").json()["attachments"]?["chunks"] == 2)
        let blobs = w.store("rima") + ".blobs"
        let chunkFile = try #require(
            try FileManager.default.subpathsOfDirectory(atPath: blobs).map { "\(blobs)/\($0)" }.first { path in
                var info = stat()
                return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
            })
        let handle = try #require(FileHandle(forUpdatingAtPath: chunkFile))
        try handle.seek(toOffset: 40)
        let byte = handle.readData(ofLength: 1)
        try handle.seek(toOffset: 40)
        handle.write(Data([byte[0] ^ 0x01]))
        try handle.close()
        let verified = try await w.run("rima", "verify", "--json")
        #expect(verified.status == 1)
        #expect(try verified.json()["attachments"]?["damaged"] == .array([.string(sha(photo.bytes))]))
        let out = w.dir.file("shelling-copy.jpg")
        #expect(try await w.run("rima", "attachment", "get", id, sha(photo.bytes), "--out", out).status == 1)
        #expect(!FileManager.default.fileExists(atPath: out))
        let wiped = try await w.ok("rima", "wipe", "--yes")
        #expect(wiped.status == 0)
        #expect(!FileManager.default.fileExists(atPath: blobs))
        await w.lockAll()
    }
}
