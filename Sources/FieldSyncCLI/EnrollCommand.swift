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
        let transport = try HTTPSyncTransport(baseURL: server, node: identity.node, trustedCertificatesPEM: trusted)
        let response: EnrolResponse
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
            response = try await transport.enrol(EnrolRequest(
                code: normalised, node: identity.node, publicKey: try store.publicKey(), proof: try store.enrolmentProof(code: normalised),
                nonce: try store.nodeNonce(identity.node)))
            await transport.shutdown()
        } catch let error as SyncError {
            await transport.shutdown()
            if case .rejected(_, let rejection) = error { throw CLIError("enrolment refused: \(rejection.message)") }
            if caPEM == nil, seen != nil, error.description.contains("does not chain") {
                throw CLIError("enrolment failed: \(server)'s certificate is issued by a CA, not self-signed; give that CA's certificate with --ca-cert so that this replica trusts only it")
            }
            throw CLIError("enrolment failed: \(error.description)")
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
        if json {
            print(JSONValue.object([
                "server": .string(server), "user": .string(response.user), "role": .string(response.role.rawValue), "node": .string(identity.node.rawValue),
                "pin": seen.map { .string($0.publicKeyPin) } ?? .null, "server_key": .string(fingerprint),
            ]).canonicalText)
        } else {
            print("enrolled with \(server) as \(response.user) (\(response.role.rawValue)); node \(identity.node)")
            if let seen { print("pinned the server's TLS key \(seen.publicKeyPin); compare it with the one your admin gave you") }
            print("pinned the central node's signing key \(fingerprint): only keys it vouches for are trusted")
        }
    }
}
