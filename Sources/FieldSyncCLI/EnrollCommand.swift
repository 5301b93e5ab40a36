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
        help: ArgumentHelp(
            "Require the central node's signing key to have this fingerprint (as `serve` prints it).", valueName: "sha256:HEX"))
    var serverKey: String?
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        try SyncCommand.checkURL(server)
        let store = try storeOptions.open()
        let identity = try store.identity()
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

        // Who this replica enrols as. Nothing changes in the store until the central node has
        // accepted it: bad input or a refused code leave the replica as it was.
        var candidate = EnrolmentIdentity.current(of: store, identity: identity)
        let previous = try store.enrolment()
        if let previous {
            let same = Self.sameServer(previous.server, server)
            if same {
                // The central node it enrolled with, checked against what it pinned then, unless
                // the admin gave the new pins.
                if let old = previous.pin, let now = seen?.publicKeyPin, old != now, pin == nil {
                    throw CLIError(
                        "\(server) presents TLS key \(now), not the \(old) pinned at enrolment; give --pin from your admin to enrol again")
                }
                let oldTrust = [previous.caCertificatePEM ?? previous.pinnedCertificatePEM].compactMap { $0 }
                if try await Self.tokenStillWorks(previous, trusted: oldTrust.isEmpty ? trusted : oldTrust) {
                    // Idempotent: enrolling a replica that is enrolled and working changes nothing.
                    print(
                        "already enrolled with \(server) as \(previous.user) (\(previous.role.rawValue)), and its token works; nothing to do"
                    )
                    return
                }
            }
            // Enrolling again (the device was revoked, perhaps seized): a new device key and node
            // id, so that whoever holds the old key cannot write as this replica; what the old id
            // had not pushed is re-minted under the new one once enrolled (spec 15.4).
            candidate = .fresh(key: DeviceKey.generate(), replacing: identity.node)
        } else if try store.nodeNonce(identity.node) == nil {
            // Made before node ids were bound to keys (spec 2.1): a bound id, with what the old
            // one wrote re-minted under it.
            candidate = .fresh(key: nil, publicKey: try store.publicKey(), replacing: identity.node, remintAll: true)
        }
        // An earlier attempt that never heard back: offer the same identity again, so that the
        // server's repeat path recognises the device (its answer was lost, not refused).
        if candidate.isFresh {
            if let pending = try store.pendingEnrolment(server: server), pending.replacing == identity.node {
                candidate = EnrolmentIdentity(pending, publicKey: try store.publicKey())
            } else {
                try store.savePendingEnrolment(server: server, candidate.pending)
            }
        }
        let expectedKey =
            serverKey
            ?? (previous.flatMap { Self.sameServer($0.server, server) ? $0.serverKey : nil }).map(CentralNodeKey.fingerprint(ofPublicKey:))
        var response: EnrolResponse
        do {
            response = try await enrol(store, as: candidate, trusted: trusted, expectedKey: expectedKey)
        } catch let error as SyncError {
            guard case .rejected(_, let rejection) = error, rejection.code == .conflictingDuplicate, !candidate.isFresh else { throw error }
            // The node id is enrolled already, by an enrolment whose answer never arrived: another
            // one, with what was written under the first re-minted, and once more with this code
            // (a refusal leaves it unused).
            candidate = .fresh(key: nil, publicKey: try store.publicKey(), replacing: identity.node, remintAll: true)
            try store.savePendingEnrolment(server: server, candidate.pending)
            response = try await enrol(store, as: candidate, trusted: trusted, expectedKey: expectedKey)
        }
        // The central node's signing key, which vouches for every node's key from now on (spec 15.9).
        guard let signingKey = response.serverKey else {
            throw CLIError(
                "enrolment failed: \(server) did not send its signing key; it runs an older fieldsync than protocol \(SyncProtocol.version) needs"
            )
        }
        let fingerprint = CentralNodeKey.fingerprint(ofPublicKey: signingKey)
        if let expectedKey, expectedKey.lowercased() != fingerprint {
            throw CLIError(
                "\(server) signs with key \(fingerprint), not the expected \(expectedKey); not enrolling (the code is used: ask your admin to revoke this device and give you a new one)"
            )
        }
        let own = KeyEntry(node: candidate.node, publicKey: candidate.publicKey, certificate: response.certificate)
        guard let certificate = response.certificate, own.isCertified(by: signingKey), certificate.user == response.user,
            certificate.role == response.role
        else {
            throw CLIError("enrolment failed: \(server) did not certify this replica's node \(candidate.node) and key")
        }
        // Everything the enrolment changes here, in one transaction.
        let enrolment = Enrolment(
            server: server, token: response.token, user: response.user, role: response.role, pin: seen?.publicKeyPin,
            pinnedCertificatePEM: seen?.certificatePEM, caCertificatePEM: caPEM, serverKey: signingKey)
        var reminted = try store.completeEnrolment(
            enrolment, certificate: certificate, key: candidate.newKey, node: candidate.isFresh ? (candidate.node, candidate.nonce) : nil,
            remintingAllOf: candidate.remintAll ? candidate.replacing : nil,
            reason: previous != nil
                ? "enrolled again with a new code; a new device key and node id"
                : "node ids are made from the device key (spec 2.1), or the first enrolment's answer was lost",
            now: nowMilliseconds())
        // Re-enrolled: what the old node id wrote that the central node never received is
        // re-minted under the new, certified one; the central node keeps refusing the old id's late
        // revisions, which cannot be told apart from a seizer's (the originals stay aside here).
        let reminting = previous != nil ? candidate.replacing : nil
        if let old = reminting {
            let transport = try HTTPSyncTransport(
                baseURL: server, node: candidate.node, token: response.token, trustedCertificatesPEM: trusted)
            var held: UInt64?
            do {
                held = try await transport.knowledge().knowledge[old]
            } catch {
                // `sync` re-mints it then: a revoked own node id's unpushed tail is re-minted there too.
                FileHandle.standardError.write(
                    Data(
                        "note: enrolled, but could not read what the central node holds (\(error)); `fieldsync sync` re-mints what \(old) had not pushed\n"
                            .utf8))
            }
            await transport.shutdown()
            if let held, try store.knowledge()[old] > held {
                reminted += try store.remint(
                    old, from: held + 1, replacement: candidate.node,
                    reason: "enrolled again: the central node never received \(old) from counter \(held + 1), and refuses it now",
                    now: nowMilliseconds())
            }
        }
        let identityNow = try store.identity()
        if json {
            print(
                JSONValue.object([
                    "server": .string(server), "user": .string(response.user), "role": .string(response.role.rawValue),
                    "node": .string(identityNow.node.rawValue),
                    "pin": seen.map { .string($0.publicKeyPin) } ?? .null, "server_key": .string(fingerprint),
                    "reminted": .int(Int64(reminted)),
                ]).canonicalText)
        } else {
            print("enrolled with \(server) as \(response.user) (\(response.role.rawValue)); node \(identityNow.node)")
            if let seen { print("pinned the server's TLS key \(seen.publicKeyPin); compare it with the one your admin gave you") }
            print("pinned the central node's signing key \(fingerprint): only keys it vouches for are trusted")
            if let old = reminting {
                print(
                    "enrolled again with a new device key; \(reminted) revision\(reminted == 1 ? "" : "s") that node \(old) had not pushed \(reminted == 1 ? "was" : "were") re-minted as node \(identityNow.node), and `fieldsync sync` sends \(reminted == 1 ? "it" : "them")"
                )
            }
        }
    }

    /// One enrol request as `candidate`; a refusal other than "already enrolled" becomes a one-line
    /// error. `expectedKey`: the central node key's fingerprint to check before the code is sent.
    func enrol(_ store: ReplicaStore, as candidate: EnrolmentIdentity, trusted: [String], expectedKey: String?) async throws
        -> EnrolResponse
    {
        let transport = try HTTPSyncTransport(baseURL: server, node: candidate.node, trustedCertificatesPEM: trusted)
        do {
            if let expectedKey {
                let announced = try await transport.serverKey().map(CentralNodeKey.fingerprint(ofPublicKey:))
                guard announced == expectedKey.lowercased() else {
                    await transport.shutdown()
                    throw CLIError(
                        "\(server) signs with key \(announced ?? "(none)"), not the expected \(expectedKey); not enrolling (if your admin says the central node's key changed, give --server-key)"
                    )
                }
            }
            let normalised = Secrets.normaliseCode(code)
            let proofBytes = EnrolRequest.proofBytes(code: normalised, node: candidate.node)
            let proof = try candidate.newKey?.signature(for: proofBytes) ?? store.signWithDeviceKey(proofBytes)
            let response = try await transport.enrol(
                EnrolRequest(
                    code: normalised, node: candidate.node, publicKey: candidate.publicKey, proof: proof, nonce: candidate.nonce))
            await transport.shutdown()
            return response
        } catch let error as SyncError {
            await transport.shutdown()
            if case .rejected(_, let rejection) = error {
                if rejection.code == .conflictingDuplicate { throw error }
                throw CLIError("enrolment refused: \(rejection.message)")
            }
            if caCert == nil, trusted.first != nil, error.description.contains("does not chain") {
                throw CLIError(
                    "enrolment failed: \(server)'s certificate is issued by a CA, not self-signed; give that CA's certificate with --ca-cert so that this replica trusts only it"
                )
            }
            throw CLIError("enrolment failed: \(error.description)")
        }
    }

    /// Two server URLs name the same central node when they differ only by a trailing slash or
    /// the case of the scheme and host.
    static func sameServer(_ a: String, _ b: String) -> Bool {
        func normal(_ url: String) -> String {
            var text = url.hasSuffix("/") ? String(url.dropLast()) : url
            if var components = URLComponents(string: text) {
                components.scheme = components.scheme?.lowercased()
                components.host = components.host?.lowercased()
                text = components.string ?? text
            }
            return text
        }
        return normal(a) == normal(b)
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

/// Who `enroll` enrols as: this replica's current node id and key, or a new node id (bound to the
/// current key, or to a new one) that the store adopts only once the central node accepted it.
struct EnrolmentIdentity {
    var node: NodeID
    var nonce: String?
    var publicKey: String
    /// A new device key, for a re-enrolment; nil keeps the current one.
    var newKey: DeviceKey?
    /// The node id a fresh one replaces.
    var replacing: NodeID?
    /// Re-mint everything `replacing` wrote under the new id (it never reached the central node).
    var remintAll = false

    var isFresh: Bool { replacing != nil }

    /// As recorded until the central node answers.
    var pending: PendingEnrolment {
        PendingEnrolment(key: newKey, node: node, nonce: nonce ?? "", replacing: replacing ?? node, remintAll: remintAll)
    }

    init(node: NodeID, nonce: String?, publicKey: String, newKey: DeviceKey? = nil, replacing: NodeID? = nil, remintAll: Bool = false) {
        self.node = node
        self.nonce = nonce
        self.publicKey = publicKey
        self.newKey = newKey
        self.replacing = replacing
        self.remintAll = remintAll
    }

    /// `publicKey`: the replica's current key, when the pending identity keeps it.
    init(_ pending: PendingEnrolment, publicKey: String) {
        self.init(
            node: pending.node, nonce: pending.nonce, publicKey: pending.key?.publicKeyBase64 ?? publicKey, newKey: pending.key,
            replacing: pending.replacing, remintAll: pending.remintAll)
    }

    static func current(of store: ReplicaStore, identity: ReplicaIdentity) -> EnrolmentIdentity {
        EnrolmentIdentity(
            node: identity.node, nonce: (try? store.nodeNonce(identity.node)) ?? nil, publicKey: (try? store.publicKey()) ?? "")
    }

    static func fresh(key: DeviceKey, replacing: NodeID) -> EnrolmentIdentity {
        let bound = NodeBinding.fresh(publicKey: key.publicKeyBase64)
        return EnrolmentIdentity(node: bound.node, nonce: bound.nonce, publicKey: key.publicKeyBase64, newKey: key, replacing: replacing)
    }

    static func fresh(key: DeviceKey?, publicKey: String, replacing: NodeID, remintAll: Bool) -> EnrolmentIdentity {
        let bound = NodeBinding.fresh(publicKey: publicKey)
        return EnrolmentIdentity(
            node: bound.node, nonce: bound.nonce, publicKey: publicKey, newKey: key, replacing: replacing, remintAll: remintAll)
    }
}
