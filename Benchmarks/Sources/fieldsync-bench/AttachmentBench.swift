import Crypto
import FieldSyncBlobs
import FieldSyncClient
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore
import FieldSyncTestSupport
import Foundation

// Section 9, attachments (#16): peak memory of client and server for a large file, upload
// throughput against `cp` + `sha256sum` of the same file, and the bytes a link that drops every
// 8 MiB makes the client send. Client and server run as child processes of this binary, so that
// each one's peak memory is its own.

/// Writes `mebibytes` MiB of incompressible bytes, each MiB different, without holding them.
func writeEvidenceFile(_ path: String, mebibytes: Int) throws {
    FileManager.default.createFile(atPath: path, contents: nil)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    var block = Fixtures.randomBytes(1 << 20, seed: 99)
    for index in 0..<mebibytes {
        withUnsafeBytes(of: UInt64(index).littleEndian) { for (offset, byte) in $0.enumerated() { block[offset] = byte } }
        handle.write(Data(block))
    }
    try handle.close()
}

/// A child process of this binary: its output lines, its exit status, and how long it ran.
func runChild(_ arguments: [String]) throws -> (lines: [String], seconds: Double) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    let elapsed = try time {
        try process.run()
        process.waitUntilExit()
    }
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    guard process.terminationStatus == 0 else { throw StoreError(.invalid, "\(arguments[0]) failed: \(text)") }
    return (text.split(separator: "\n").map(String.init), elapsed)
}

func resultValue(_ lines: [String], _ name: String) -> Double {
    for line in lines where line.hasPrefix("RESULT ") {
        let words = line.split(separator: " ")
        if let at = words.firstIndex(of: Substring(name)), at + 1 < words.count, let value = Double(words[at + 1]) { return value }
    }
    return .nan
}

/// A figure that is not a time, beside its baseline or limit, as a ratio.
func figure(_ what: String, _ value: Double, _ baseline: Double, unit: String, target: String) {
    let figures = String(format: "%10.1f %@  limit %10.1f %@  ratio %6.2f", value, unit, baseline, unit, value / baseline)
    emit("| \(what.padding(toLength: 40, withPad: " ", startingAt: 0)) | \(figures) | target \(target) |")
}

/// The children's modes. Returns true when this process was one.
func attachmentChild(_ arguments: [String]) async throws -> Bool {
    if let index = arguments.firstIndex(of: "--serve-child") {
        // A central node over STORE; prints its port, and its peak memory when stdin says "rss".
        let server = try await LiveServer.start(storePath: arguments[index + 1])
        emit("PORT \(server.port)")
        while let line = readLine() {
            if line == "rss" { emit("RESULT rss \(peakRSSMegabytes())") }
            if line == "stop" { break }
        }
        await server.stop()
        return true
    }
    if let index = arguments.firstIndex(of: "--attach-child") {
        let store = try ReplicaStore.open(at: arguments[index + 1])
        let id = try Fixtures.addIncident(store, title: "Evidence for the benchmark")
        let staged = try store.blobs.staging()
        let file = arguments[index + 2]
        let size = ((try FileManager.default.attributesOfItem(atPath: file))[.size] as! NSNumber).int64Value
        let manifest = try FileDigester.digest(file: file) { chunk, bytes, hash in
            try staged.write(chunk, bytes, hash: hash, chunkSize: AttachmentContent.chunkSize(forSize: size))
        }
        _ = try store.attach(record: id, manifest: manifest, staged: staged, fields: ["name": "evidence.mp4"], now: 1_741_340_000_000)
        emit("RESULT rss \(peakRSSMegabytes()) sha \(manifest.sha256)")
        return true
    }
    if let index = arguments.firstIndex(of: "--upload-child") {
        let store = try ReplicaStore.open(at: arguments[index + 1])
        let enrolment = try store.enrolment()!
        let url = arguments.count > index + 2 ? arguments[index + 2] : enrolment.server
        _ = try await syncOnce(store)
        let transport = try HTTPSyncTransport(baseURL: url, node: try store.identity().node, token: enrolment.token)
        let start = ContinuousClock.now
        let report = try await AttachmentTransfer(store: store, transport: transport, retries: 100, backoff: { _ in 0.05 }).uploadAll()
        let elapsed = start.duration(to: .now)
        await transport.shutdown()
        guard report.receipts == 1, report.failed.isEmpty else { throw StoreError(.invalid, "upload failed: \(report)") }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        emit("RESULT rss \(peakRSSMegabytes()) seconds \(seconds) retries \(report.retries)")
        return true
    }
    if let index = arguments.firstIndex(of: "--fetch-child") {
        // Pull the revisions, fetch every attachment, write it out; prints its SHA-256.
        let store = try ReplicaStore.open(at: arguments[index + 1])
        _ = try await syncOnce(store)
        let transport = try Enrolling.transport(for: store)
        let report = try await AttachmentTransfer(store: store, transport: transport, retries: 3).downloadAll()
        await transport.shutdown()
        guard report.downloaded == 1, let manifest = try store.localAttachments().first else {
            throw StoreError(.invalid, "fetch failed: \(report)")
        }
        let out = arguments[index + 2]
        FileManager.default.createFile(atPath: out, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        var hasher = SHA256()
        for chunk in 0..<manifest.chunkCount {
            let bytes = try store.blobs.chunk(chunk, of: manifest)
            hasher.update(data: bytes)
            handle.write(Data(bytes))
        }
        try handle.close()
        emit("RESULT rss \(peakRSSMegabytes()) sha \(ContentHash.hex(hasher.finalize()))")
        return true
    }
    return false
}

func attachmentSection(memoryMiB: Int, throughputMiB: Int, resumptionMiB: Int) async throws {
    emit("")
    emit("## 9. Attachments (client and server in child processes; a \(memoryMiB) MiB file for memory)")
    let serverPath = work.file("att-server.sqlite")
    _ = try ReplicaStore.create(at: serverPath, name: "central", now: 1, access: .pool)
    let server = Process()
    server.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
    server.arguments = ["--serve-child", serverPath]
    let serverOut = Pipe()
    let serverIn = Pipe()
    server.standardOutput = serverOut
    server.standardInput = serverIn
    try server.run()
    var port = 0
    var pending = ""
    while port == 0 {
        let data = serverOut.fileHandleForReading.availableData
        guard !data.isEmpty else { throw StoreError(.invalid, "the server child did not start") }
        pending += String(decoding: data, as: UTF8.self)
        if let line = pending.split(separator: "\n").first(where: { $0.hasPrefix("PORT ") }) { port = Int(line.dropFirst(5)) ?? 0 }
    }
    let url = "http://127.0.0.1:\(port)"
    let central = try ReplicaStore.open(at: serverPath, access: .pool)
    func replica(_ name: String) async throws -> String {
        let path = work.file("att-\(name).sqlite")
        let store = try ReplicaStore.create(at: path, name: name, now: 1)
        try await Enrolling.enrol(store, as: name, role: .documenter, serverStore: central, url: url)
        var enrolment = try store.enrolment()!
        enrolment.serverKey = try central.publicKey()
        try store.saveEnrolment(enrolment, now: 1)
        try store.close()
        return path
    }

    // Memory: attach, upload and fetch a large file.
    let big = work.file("evidence-big.bin")
    try writeEvidenceFile(big, mebibytes: memoryMiB)
    let writer = try await replica("writer")
    let attached = try runChild(["--attach-child", writer, big])
    let uploaded = try runChild(["--upload-child", writer])
    let reader = try await replica("reader")
    let out = work.file("evidence-big.out")
    let fetched = try runChild(["--fetch-child", reader, out])
    serverIn.fileHandleForWriting.write(Data("rss\n".utf8))
    var serverRSS = Double.nan
    while serverRSS.isNaN {
        let data = serverOut.fileHandleForReading.availableData
        guard !data.isEmpty else { break }
        pending += String(decoding: data, as: UTF8.self)
        serverRSS = resultValue(pending.split(separator: "\n").map(String.init), "rss")
    }
    let shaIn = attached.lines.first { $0.hasPrefix("RESULT ") }?.split(separator: " ").last.map(String.init) ?? "?"
    let shaOut = fetched.lines.first { $0.hasPrefix("RESULT ") }?.split(separator: " ").last.map(String.init) ?? "!"
    note(
        "attach \(String(format: "%.0f", resultValue(attached.lines, "rss"))) MB, upload \(String(format: "%.0f", resultValue(uploaded.lines, "rss"))) MB, fetch and write out \(String(format: "%.0f", resultValue(fetched.lines, "rss"))) MB, server \(String(format: "%.0f", serverRSS)) MB peak RSS (target < 150 MB each); fetched bytes \(shaIn == shaOut ? "identical" : "DIFFERENT")"
    )
    let clientPeak = max(resultValue(attached.lines, "rss"), resultValue(uploaded.lines, "rss"), resultValue(fetched.lines, "rss"))
    figure("peak RSS, client", clientPeak, 150, unit: "MB", target: "< 1")
    figure("peak RSS, server", serverRSS, 150, unit: "MB", target: "< 1")
    for file in [big, out, writer + ".blobs", reader + ".blobs"] { try? FileManager.default.removeItem(atPath: file) }
    try? FileManager.default.removeItem(atPath: serverPath + ".blobs/objects")
    try FileManager.default.createDirectory(atPath: serverPath + ".blobs/objects", withIntermediateDirectories: true)

    // Throughput: upload and commit against cp + sha256sum of the same file, alternated rounds.
    let file = work.file("evidence-1g.bin")
    try writeEvidenceFile(file, mebibytes: throughputMiB)
    var uploads: [Double] = []
    var baselines: [Double] = []
    for round in 0..<3 {
        let sender = try await replica("sender\(round)")
        _ = try runChild(["--attach-child", sender, file])
        baselines.append(
            try time {
                for command in [["cp", file, file + ".copy"], ["sha256sum", file]] {
                    let process = Process()
                    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                    process.arguments = command
                    process.standardOutput = FileHandle.nullDevice
                    try process.run()
                    process.waitUntilExit()
                }
            })
        try? FileManager.default.removeItem(atPath: file + ".copy")
        uploads.append(resultValue(try runChild(["--upload-child", sender]).lines, "seconds"))
        try? FileManager.default.removeItem(atPath: sender + ".blobs")
        try? FileManager.default.removeItem(atPath: serverPath + ".blobs/objects")
        try FileManager.default.createDirectory(atPath: serverPath + ".blobs/objects", withIntermediateDirectories: true)
    }
    report("upload+commit \(throughputMiB) MiB / cp+sha256sum", uploads.sorted()[1], baselines.sorted()[1], target: "<= 3")
    try? FileManager.default.removeItem(atPath: file)

    // Resumption: a link that drops the connection every 8 MiB.
    let shaky = work.file("evidence-shaky.bin")
    try writeEvidenceFile(shaky, mebibytes: resumptionMiB)
    let traveller = try await replica("traveller")
    _ = try runChild(["--attach-child", traveller, shaky])
    let proxy = try WeakLinkProxy(targetPort: port, dropAfter: 8 << 20)
    let resumed = try runChild(["--upload-child", traveller, proxy.url])
    let size = Double(resumptionMiB << 20)
    figure("bytes sent, a drop every 8 MiB", Double(proxy.bytesFromClients) / 1_048_576, size / 1_048_576, unit: "MiB", target: "<= 1.1")
    note("\(proxy.drops) connections cut, \(Int(resultValue(resumed.lines, "retries"))) retries, completed with a receipt")
    proxy.stop()
    serverIn.fileHandleForWriting.write(Data("stop\n".utf8))
    server.waitUntilExit()
}
