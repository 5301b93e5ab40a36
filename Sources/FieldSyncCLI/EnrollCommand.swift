import ArgumentParser
import FieldSyncClient
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore
import Foundation

/// `fieldsync enroll`: registers this replica's device key with the central node, using a one-time code.
struct EnrollCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll", abstract: "Enrol this replica with a central node using a one-time code from an admin.",
        discussion: """
            Registers the replica's node id and Ed25519 public key, and stores the bearer token the \
            server returns (in the replica file, mode 0600; it is never printed).

            Example:
              fieldsync enroll --server https://central.example.org --code abcde-fghij-kmnpq-rstuv-wxyz2-34567-89abc-defgh
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Option(help: "The central node's URL.") var server: String
    @Option(help: "The one-time enrolment code.") var code: String
    @Option(help: ArgumentHelp("Trust this CA certificate (PEM) for the server's HTTPS certificate.", valueName: "PEM")) var caCert: String?
    @Option(help: ArgumentHelp("Require the server's TLS public key to have this SHA-256 (as `serve` prints it).", valueName: "sha256:HEX"))
    var pin: String?
    @Option(
        help: ArgumentHelp("Require the central node's signing key to have this fingerprint (as `serve` prints it).", valueName: "sha256:HEX"))
    var serverKey: String?
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        try SyncCommand.checkURL(server)
        let store = try storeOptions.open()
        var identity = try store.identity()
        // A replica made before node ids were bound to keys takes a bound one first (spec 2.1):
        // what it wrote under the old id is re-minted under the new one, the originals kept aside.
        if try store.nodeNonce(identity.node) == nil {
            let fresh = try store.newNodeID()
            let reason = "node ids are made from the device key since protocol 2 (spec 2.1); \(identity.node) was not"
            if try store.knowledge()[identity.node] > 0 {
                try store.remint(from: 1, replacement: fresh, reason: "\(reason); re-minted as \(fresh) before enrolling", now: nowMilliseconds())
            } else {
                try store.retireNodeID(reason: reason, now: nowMilliseconds(), replacement: fresh)
            }
            identity = try store.identity()
        }
        var caPEM: String?
        if let caCert {
            guard let text = try? String(contentsOfFile: caCert, encoding: .utf8), text.contains("BEGIN CERTIFICATE") else {
                throw CLIError("cannot read a PEM certificate from \(caCert)")
            }
            caPEM = text
        }
        // Over HTTPS, read the server's key first and pin it: later syncs refuse any other server.
        var seen: ServerTLSIdentity?
        if let components = URLComponents(string: server), components.scheme == "https", let host = components.host {
            do { seen = try await TLSProbe.identity(host: host, port: components.port ?? 443) } catch {
                throw CLIError("cannot reach \(server) over TLS: \(error)")
            }
            if let pin, pin.lowercased() != seen!.publicKeyPin {
                throw CLIError("\(server) presents TLS key \(seen!.publicKeyPin), not the expected \(pin); not enrolling")
            }
        } else if pin != nil || caCert != nil {
            throw CLIError("--pin and --ca-cert need an https:// server URL")
        }
        // The code is a secret too: the enrol request trusts only the CA given, or else only the
        // certificate just read, whose key `--pin` may have confirmed.
        let trusted = [caPEM ?? seen?.certificatePEM].compactMap { $0 }
        // Enrolling again (the device was revoked, perhaps seized): a new device key and node id,
        // so that whoever holds the old key cannot write as this replica; what it had not pushed
        // is re-minted under the new id once enrolled (spec 15.4, re-enrolment).
        var reminting: NodeID?
        if let previous = try store.enrolment() {
            if previous.server == server, try await Self.tokenStillWorks(previous, trusted: trusted) {
                // Idempotent: enrolling a replica that is enrolled and working changes nothing.
                print("already enrolled with \(server) as \(previous.user) (\(previous.role.rawValue)), and its token works; nothing to do")
                return
            }
            reminting = identity.node
            try store.rotateDeviceKey(reason: "enrolled again with a new code (the previous enrolment's token no longer works)", now: nowMilliseconds())
            identity = try store.identity()
        }
        var response: EnrolResponse
        do {
            response = try await enrol(store, identity: identity, trusted: trusted)
        } catch let error as SyncError {
            guard case .rejected(_, let rejection) = error, rejection.code == .conflictingDuplicate else { throw error }
            // The node id is enrolled already, by an enrolment whose answer never arrived: take
            // another one, re-minting what was written under it, and try once more with this code
            // (a refusal leaves it unused).
            let fresh = try store.newNodeID()
            let reason = "\(identity.node) was enrolled by an enrolment whose answer was lost"
            if try store.knowledge()[identity.node] > 0 {
                try store.remint(from: 1, replacement: fresh, reason: "\(reason); re-minted as \(fresh)", now: nowMilliseconds())
            } else {
                try store.retireNodeID(reason: reason, now: nowMilliseconds(), replacement: fresh)
            }
            identity = try store.identity()
            response = try await enrol(store, identity: identity, trusted: trusted)
        }
        // The central node's signing key, which vouches for every node's key from now on (spec 15.9).
        guard let signingKey = response.serverKey else {
            throw CLIError("enrolment failed: \(server) did not send its signing key; it runs an older fieldsync than protocol \(SyncProtocol.version) needs")
        }
        let fingerprint = CentralNodeKey.fingerprint(ofPublicKey: signingKey)
        if let serverKey, serverKey.lowercased() != fingerprint {
            throw CLIError("\(server) signs with key \(fingerprint), not the expected \(serverKey); not enrolling (the code is used: ask your admin to revoke this device and give you a new one)")
        }
        let own = KeyEntry(node: identity.node, publicKey: try store.publicKey(), certificate: response.certificate)
        guard own.isCertified(by: signingKey), response.certificate?.user == response.user, response.certificate?.role == response.role else {
            throw CLIError("enrolment failed: \(server) did not certify this replica's node \(identity.node) and key")
        }
        try store.saveEnrolment(
            Enrolment(
                server: server, token: response.token, user: response.user, role: response.role, pin: seen?.publicKeyPin,
                pinnedCertificatePEM: seen?.certificatePEM, caCertificatePEM: caPEM, serverKey: signingKey),
            now: nowMilliseconds())
        try store.rememberKeys([KeyEntry(certificate: response.certificate!)], from: .centralNode(serverKey: signingKey))
        // Re-enrolled: what the old node id wrote that the central node never received is
        // re-minted under the new, certified one; the central node keeps refusing the old id's late
        // revisions, which cannot be told apart from a seizer's (the originals stay aside here).
        var reminted = 0
        if let old = reminting {
            let transport = try HTTPSyncTransport(baseURL: server, node: identity.node, token: response.token, trustedCertificatesPEM: trusted)
            var held: UInt64?
            do {
                held = try await transport.knowledge().knowledge[old]
            } catch {
                // `sync` re-mints it then: a revoked own node id's unpushed tail is re-minted there too.
                FileHandle.standardError.write(Data("note: enrolled, but could not read what the central node holds (\(error)); `fieldsync sync` re-mints what \(old) had not pushed\n".utf8))
            }
            await transport.shutdown()
            if let held, try store.knowledge()[old] > held {
                reminted = try store.remint(
                    old, from: held + 1, replacement: identity.node,
                    reason: "enrolled again: the central node never received \(old) from counter \(held + 1), and refuses it now", now: nowMilliseconds())
            }
        }
        if json {
            print(JSONValue.object([
                "server": .string(server), "user": .string(response.user), "role": .string(response.role.rawValue), "node": .string(identity.node.rawValue),
                "pin": seen.map { .string($0.publicKeyPin) } ?? .null, "server_key": .string(fingerprint), "reminted": .int(Int64(reminted)),
            ]).canonicalText)
        } else {
            print("enrolled with \(server) as \(response.user) (\(response.role.rawValue)); node \(identity.node)")
            if let seen { print("pinned the server's TLS key \(seen.publicKeyPin); compare it with the one your admin gave you") }
            print("pinned the central node's signing key \(fingerprint): only keys it vouches for are trusted")
            if let old = reminting {
                print("enrolled again with a new device key; \(reminted) revision\(reminted == 1 ? "" : "s") that node \(old) had not pushed \(reminted == 1 ? "was" : "were") re-minted as node \(identity.node), and `fieldsync sync` sends \(reminted == 1 ? "it" : "them")")
            }
        }
    }

    /// One enrol request; a refusal other than "already enrolled" becomes a one-line error.
    func enrol(_ store: ReplicaStore, identity: ReplicaIdentity, trusted: [String]) async throws -> EnrolResponse {
        let transport = try HTTPSyncTransport(baseURL: server, node: identity.node, trustedCertificatesPEM: trusted)
        do {
            // The expected signing key is checked before the code is sent, so a wrong server
            // never uses it up.
            if let serverKey {
                let announced = try await transport.serverKey().map(CentralNodeKey.fingerprint(ofPublicKey:))
                guard announced == serverKey.lowercased() else {
                    await transport.shutdown()
                    throw CLIError("\(server) signs with key \(announced ?? "(none)"), not the expected \(serverKey); not enrolling")
                }
            }
            let normalised = Secrets.normaliseCode(code)
            let response = try await transport.enrol(EnrolRequest(
                code: normalised, node: identity.node, publicKey: try store.publicKey(), proof: try store.enrolmentProof(code: normalised),
                nonce: try store.nodeNonce(identity.node)))
            await transport.shutdown()
            return response
        } catch let error as SyncError {
            await transport.shutdown()
            if case .rejected(_, let rejection) = error {
                if rejection.code == .conflictingDuplicate { throw error }
                throw CLIError("enrolment refused: \(rejection.message)")
            }
            if caCert == nil, trusted.first != nil, error.description.contains("does not chain") {
                throw CLIError("enrolment failed: \(server)'s certificate is issued by a CA, not self-signed; give that CA's certificate with --ca-cert so that this replica trusts only it")
            }
            throw CLIError("enrolment failed: \(error.description)")
        }
    }

    /// Whether the earlier enrolment's token is still accepted (then there is nothing to re-enrol).
    static func tokenStillWorks(_ enrolment: Enrolment, trusted: [String]) async throws -> Bool {
        let transport = try HTTPSyncTransport(baseURL: enrolment.server, token: enrolment.token, trustedCertificatesPEM: trusted)
        defer { Task { await transport.shutdown() } }
        do {
            _ = try await transport.knowledge()
            await transport.shutdown()
            return true
        } catch SyncError.rejected(let status, _) where status == 401 {
            await transport.shutdown()
            return false
        } catch {
            await transport.shutdown()
            throw CLIError("cannot check the earlier enrolment with \(enrolment.server): \(error)")
        }
    }
}
