import FieldSyncClient
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore
import FieldSyncTestSupport
import Foundation
import NIOSSL
import Testing

/// Enrolment, roles, TLS pinning, tampered bundles and secrets hygiene, through the built binary
/// against `fieldsync serve` running as a process.
@Suite struct SecurityCommandTests {
    let w: CLIWorkspace
    init() throws { w = try CLIWorkspace("secure") }

    var serverStore: String { w.dir.file("central.sqlite") }

    /// A self-signed certificate for 127.0.0.1, made with openssl.
    func makeCertificate(_ name: String) throws -> (cert: String, key: String) {
        let cert = w.dir.file("\(name).pem")
        let key = w.dir.file("\(name)-key.pem")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert,
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "openssl could not make a certificate")
        return (cert, key)
    }

    func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "openssl \(arguments.first ?? "") failed")
    }

    /// An organisation's CA, and a certificate for 127.0.0.1 that it issued.
    func makeCAIssuedCertificate(_ name: String) throws -> (ca: String, cert: String, key: String) {
        let ca = w.dir.file("\(name)-ca.pem")
        let caKey = w.dir.file("\(name)-ca-key.pem")
        let csr = w.dir.file("\(name).csr")
        let cert = w.dir.file("\(name).pem")
        let key = w.dir.file("\(name)-key.pem")
        let ext = w.dir.file("\(name).ext")
        try "subjectAltName=IP:127.0.0.1\n".write(toFile: ext, atomically: true, encoding: .utf8)
        try openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
            "/CN=Test CA \(name)",
            "-keyout", caKey, "-out", ca,
        ])
        try openssl([
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", key,
            "-out", csr,
        ])
        try openssl([
            "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", caKey, "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", cert,
        ])
        return (ca, cert, key)
    }

    /// #13 section 5: the connection that carries a secret trusts exactly the pinned certificate,
    /// or exactly the CA given at enrolment, never anything else (the system's roots included).
    @Test func theConnectionCarryingTheTokenTrustsOnlyThePinOrTheGivenCA() async throws {
        let issued = try makeCAIssuedCertificate("org")
        let server = try await ServerProcess.start(
            binary: w.binary, store: serverStore, extraArguments: ["--tls-cert", issued.cert, "--tls-key", issued.key])
        try await w.initReplica("rima")
        let code = try #require(
            try await w.binary.run(["server", "add-user", "rima", "--role", "documenter", "--store", serverStore, "--json"]).json()["code"]?
                .stringValue)
        // A certificate a CA issued is not trusted through the pin alone: the CA must be named.
        let unpinned = try await w.run("rima", "enroll", "--server", server.url, "--code", code)
        #expect(unpinned.status == 1)
        #expect(unpinned.stderr.contains("issued by a CA, not self-signed; give that CA's certificate with --ca-cert"), "\(unpinned)")
        #expect(try ReplicaStore.open(at: w.store("rima")).enrolment() == nil)
        try await w.ok("rima", "enroll", "--server", server.url, "--code", code, "--ca-cert", issued.ca)
        _ = try await w.add("rima", "--title", "Raid on the clinic")
        #expect(try await w.ok("rima", "sync", "--json").json()["pushed"] == 1)

        // The transport itself: a connection trusting another CA, or another pinned certificate,
        // fails its handshake before any request (and its token) is sent.
        let other = try makeCAIssuedCertificate("other")
        let selfSigned = try makeCertificate("stranger")
        for trusted in [other.ca, selfSigned.cert] {
            let transport = try HTTPSyncTransport(
                baseURL: server.url, token: "a-token-that-must-not-leave",
                trustedCertificatesPEM: [try String(contentsOfFile: trusted, encoding: .utf8)])
            await #expect {
                _ = try await transport.knowledge(probing: nil)
            } throws: { error in
                "\(error)".contains("does not chain to the certificate pinned at enrolment")
            }
            await transport.shutdown()
        }
        let configuration = try #require(
            HTTPSyncTransport.tlsConfiguration(trusting: [try String(contentsOfFile: issued.ca, encoding: .utf8)]))
        #expect(configuration.additionalTrustRoots.isEmpty)
        #expect(configuration.trustRoots == .certificates(try NIOSSLCertificate.fromPEMFile(issued.ca)))
        _ = await server.stop()
        #expect(!server.log.contains("a-token-that-must-not-leave"))
        #expect(try ReplicaStore.open(at: serverStore).status().revisions == 1)
    }

    func pin(in log: String) throws -> String {
        let range = try #require(log.range(of: #"sha256:[0-9a-f]{64}"#, options: .regularExpression))
        return String(log[range])
    }

    @Test func enrolmentOverTLSPinsTheServerAndRefusesAnother() async throws {
        let first = try makeCertificate("first")
        var server = try await ServerProcess.start(
            binary: w.binary, store: serverStore, extraArguments: ["--tls-cert", first.cert, "--tls-key", first.key])
        #expect(server.url.hasPrefix("https://127.0.0.1:"))
        let pin = try pin(in: server.log)
        try await w.initReplica("rima")
        let code = try await w.binary.run(["server", "add-user", "rima", "--role", "documenter", "--store", serverStore, "--json"]).json()[
            "code"]?.stringValue
        // A wrong expected pin is refused before anything is sent.
        let wrong = try await w.run(
            "rima", "enroll", "--server", server.url, "--code", try #require(code), "--pin", "sha256:" + String(repeating: "0", count: 64))
        #expect(wrong.status == 1)
        #expect(wrong.stderr.contains("not the expected"))
        let enrolled = try await w.ok("rima", "enroll", "--server", server.url, "--code", try #require(code), "--pin", pin, "--json").json()
        #expect(enrolled["pin"]?.stringValue == pin)
        _ = try await w.add("rima", "--title", "Shelling near the port")
        #expect(try await w.ok("rima", "sync", "--json").json()["pushed"] == 1)
        _ = await server.stop()

        // Another server (another key) at another address: the replica refuses to talk to it.
        let second = try makeCertificate("second")
        server = try await ServerProcess.start(
            binary: w.binary, store: serverStore, extraArguments: ["--tls-cert", second.cert, "--tls-key", second.key])
        _ = try await w.add("rima", "--title", "Second incident")
        let refused = try await w.run("rima", "sync", "--server", server.url)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("pinned at enrolment"))
        _ = await server.stop()
        #expect(try ReplicaStore.open(at: serverStore).status().revisions == 1)

        // The same store served over plain HTTP: the token is never sent there.
        server = try await ServerProcess.start(binary: w.binary, store: serverStore)
        #expect(server.url.hasPrefix("http://"))
        for arguments in [["sync", "--server", server.url], ["sync", "--server", server.url, "--json"]] {
            let plain = try await w.run("rima", arguments)
            #expect(plain.status == 1, "\(plain)")
            #expect(plain.stderr.contains("refusing to send its token over plain HTTP"), "\(plain)")
            #expect(plain.stderr.split(separator: "\n").count == 1, "\(plain)")
        }
        _ = await server.stop()
        // Had the token been sent, the sync would have pushed the unsynced second incident.
        #expect(!server.log.contains("push"), "the plain-HTTP server received a push: \(server.log)")
        #expect(try ReplicaStore.open(at: serverStore).status().revisions == 1)
    }

    /// `enroll` repeated with the same code from the same replica (its first answer lost on the way)
    /// succeeds, and the replica syncs with the new token; another replica's attempt with the code fails.
    @Test func repeatingEnrolWithTheSameCodeFromTheSameReplicaWorks() async throws {
        let server = try await ServerProcess.start(binary: w.binary, store: serverStore)
        try await w.initReplica("rima")
        try await w.initReplica("omar")
        let code = try #require(
            try await w.binary.run(["server", "add-user", "rima", "--role", "documenter", "--store", serverStore, "--json"]).json()["code"]?
                .stringValue)
        try await w.ok("rima", "enroll", "--server", server.url, "--code", code)
        try await w.ok("rima", "enroll", "--server", server.url, "--code", code)
        _ = try await w.add("rima", "--title", "Detentions at the crossing")
        #expect(try await w.ok("rima", "sync", "--json").json()["pushed"] == 1)
        let other = try await w.run("omar", "enroll", "--server", server.url, "--code", code)
        #expect(other.status == 1 && other.stderr.contains("already used"), "\(other)")
        _ = await server.stop()
    }

    @Test func tokensAndKeysNeverAppearInOutputOrLogs() async throws {
        let server = try await ServerProcess.start(binary: w.binary, store: serverStore)
        try await w.initReplica("rima", server: server.url, serverStore: serverStore)
        _ = try await w.add("rima", "--title", "Arrests")
        var outputs = [
            try await w.ok("rima", "sync", "--json"), try await w.ok("rima", "status", "--json"), try await w.ok("rima", "status"),
        ]
        outputs.append(try await w.run("rima", "users", "list"))
        _ = await server.stop()
        let enrolment = try #require(try ReplicaStore.open(at: w.store("rima")).enrolment())
        for output in outputs {
            #expect(!output.stdout.contains(enrolment.token))
            #expect(!output.stderr.contains(enrolment.token))
        }
        #expect(!server.log.contains(enrolment.token))
        let central = try String(contentsOfFile: serverStore, encoding: .isoLatin1)
        #expect(!central.contains(enrolment.token), "the server stores only a hash of the token")
        let mode = try FileManager.default.attributesOfItem(atPath: w.store("rima"))[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    /// #13 section 2: a documenter may edit a conflicted field; the value becomes one more
    /// candidate, every sync completes, and only the admin's `resolve` ends the conflict.
    @Test func documentersEditConflictedFieldsAndOnlyAnAdminEndsTheConflict() async throws {
        let server = try await ServerProcess.start(binary: w.binary, store: serverStore)
        try await w.initReplica("admin", server: server.url, serverStore: serverStore, role: "admin")
        for name in ["rima", "omar"] { try await w.initReplica(name, server: server.url, serverStore: serverStore) }
        let id = try await w.add("rima", "--title", "Killings at the checkpoint", "--set", "casualties.killed=3")
        for name in ["rima", "omar"] { _ = try await w.ok(name, "sync") }
        try await w.ok("rima", "edit", id, "--set", "casualties.killed=4")
        try await w.ok("omar", "edit", id, "--set", "casualties.killed=6")
        for name in ["rima", "omar", "rima", "admin"] { _ = try await w.ok(name, "sync") }
        let edit = try await w.ok("omar", "edit", id, "--set", "casualties.killed=5")
        #expect(edit.stderr.contains("casualties.killed of \(id.prefix(8)) is in conflict: your value is kept as one more candidate"))
        let resolve = try await w.run("omar", "resolve", id, "--pick", "casualties.killed=1", "--note", "mine")
        #expect(resolve.status == 1)
        #expect(resolve.stderr.contains("only an admin"))
        // Omar's sync completes, and the server still lists the conflict: his 5 covers 4 and 6 but ends nothing.
        _ = try await w.ok("omar", "sync")
        _ = try await w.ok("admin", "sync")
        let listed = try #require(try await w.ok("admin", "conflicts", "--json").json().arrayValue?.first?["conflicts"]?.arrayValue?.first)
        #expect(listed["path"] == "casualties.killed")
        #expect(listed["candidates"]?.arrayValue?.compactMap { $0["value"]?.intValue } == [5])
        #expect(listed["disputes"]?.arrayValue?.count == 1)
        let text = try await w.ok("admin", "conflicts").stdout
        #expect(text.contains("the current values agree, but no admin has resolved the disagreement"))
        #expect(try await w.show("omar", id)["conflicts"]?.arrayValue?.count == 1)
        try await w.ok("omar", "edit", id, "--set", "narrative=Second visit")
        try await w.ok("admin", "resolve", id, "--pick", "casualties.killed=1", "--note", "Hospital list")
        for name in ["omar", "admin", "omar", "rima"] { _ = try await w.ok(name, "sync") }
        for name in ["omar", "rima", "admin"] { #expect(try await w.show(name, id)["conflicts"] == [], "\(name)") }
        #expect(try await w.show("rima", id)["fields"]?["casualties"]?["killed"] == 5)
        // History shows who signed each revision and that it verified.
        let history = try #require(try await w.ok("omar", "show", id, "--history", "--json").json()["history"]?.arrayValue)
        #expect(history.allSatisfy { $0["signature"] == "verified" })
        #expect(Set(history.compactMap { $0["signed_by"]?.stringValue }) == ["rima", "omar", "admin"])
        #expect(history.filter { $0["conflicts_resolved"] == ["casualties.killed"] }.compactMap { $0["author"]?.stringValue } == ["admin"])
        _ = await server.stop()
    }

    @Test func adminsManageUsersDevicesAndReadTheAudit() async throws {
        let server = try await ServerProcess.start(binary: w.binary, store: serverStore)
        try await w.initReplica("admin", server: server.url, serverStore: serverStore, role: "admin")
        try await w.initReplica("lina")
        let code = try #require(
            try await w.ok("admin", "users", "add", "lina", "--role", "documenter", "--json").json()["code"]?.stringValue)
        try await w.ok("lina", "enroll", "--server", server.url, "--code", code)
        let devices = try await w.ok("admin", "devices", "list", "--json").json()
        let linaNode = try #require(devices.arrayValue?.first { $0["user"] == "lina" }?["node"]?.stringValue)
        _ = try await w.add("lina", "--title", "Looting")
        _ = try await w.ok("lina", "sync")
        // The laptop is lost: revoke it. It can no longer sync; what it pushed stays.
        try await w.ok("admin", "devices", "revoke", linaNode)
        let refused = try await w.run("lina", "sync")
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("revoked") || refused.stderr.contains("not valid"))
        let denied = try await w.run("lina", "users", "list")
        #expect(denied.status == 1)
        _ = try await w.ok("admin", "sync")
        #expect(try await w.ok("admin", "list", "--json").json().arrayValue?.count == 1)
        // Lina's sync pushed and had nothing to pull (a sync that finds nothing new makes one
        // request); the admin's sync pulled her record.
        let audit = try #require(try await w.ok("admin", "audit", "--json").json().arrayValue)
        let actions = audit.compactMap { $0["action"]?.stringValue }
        #expect(Set(actions).isSuperset(of: ["add-user", "enrol", "push", "pull", "revoke-device"]))
        #expect(actions.filter { $0 == "pull" }.count == 1)
        _ = await server.stop()
    }

    @Test func aBundleAlteredAndResealedIsRejectedBySignature() async throws {
        try await w.initReplica("a")
        try await w.initReplica("b")
        _ = try await w.add("a", "--title", "Executions at the farm", "--set", "casualties.killed=4")
        let file = w.dir.file("a.bundle")
        try await w.ok("a", "bundle", "export", "--out", file)
        // A forger changes a figure and recomputes the checksum: only the signature can tell.
        var bundle = try BundleFile(fileBytes: Array(try Data(contentsOf: URL(fileURLWithPath: file))))
        bundle.revisions[0].operations = bundle.revisions[0].operations.map { op in
            if case .set("casualties.killed", _) = op { return .set(path: "casualties.killed", value: 40) }
            return op
        }
        let forged = w.dir.file("forged.bundle")
        try Data(bundle.fileBytes).write(to: URL(fileURLWithPath: forged))
        let before = try await w.state("b")
        let result = try await w.run("b", "bundle", "import", forged)
        #expect(result.status == 1)
        #expect(result.stderr.contains("signature"))
        #expect(try await w.state("b") == before)
        // The genuine bundle imports, and its key is remembered: a later bundle with another key for that node is refused.
        try await w.ok("b", "bundle", "import", file)
        bundle = try BundleFile(fileBytes: Array(try Data(contentsOf: URL(fileURLWithPath: file))))
        bundle.keys = bundle.keys.map { KeyEntry(node: $0.node, publicKey: DeviceKey.generate().publicKeyBase64) }
        try Data(bundle.fileBytes).write(to: URL(fileURLWithPath: forged))
        let rekeyed = try await w.run("b", "bundle", "import", forged)
        #expect(rekeyed.status == 1)
        #expect(rekeyed.stderr.contains("different key"))
    }
}
