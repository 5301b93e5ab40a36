import FieldSyncClient
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore
import Foundation

/// Reaching the central node this replica is enrolled with, for sync and admin commands.
enum CentralNode {
    /// An authenticated transport for the enrolled server (or `override`). Over HTTPS it first checks
    /// that the server still presents the TLS key pinned at enrolment. Call `shutdown()` after use.
    static func connect(_ store: ReplicaStore, override: String? = nil) async throws -> HTTPSyncTransport {
        guard let enrolment = try store.enrolment() else {
            throw CLIError(
                "this replica is not enrolled with a central node: ask an admin for a code, then run `fieldsync enroll --server URL --code CODE`"
            )
        }
        let url = override ?? enrolment.server
        try SyncCommand.checkURL(url)
        // The bearer token authenticates this device: once enrolled over HTTPS, it never travels in clear.
        if URLComponents(string: url)?.scheme != "https",
            URLComponents(string: enrolment.server)?.scheme == "https" || enrolment.pin != nil || enrolment.caCertificatePEM != nil
        {
            throw CLIError(
                "this replica was enrolled over HTTPS (\(enrolment.server)); refusing to send its token over plain HTTP to \(url)")
        }
        if let pin = enrolment.pin, let components = URLComponents(string: url), components.scheme == "https", let host = components.host {
            let seen: ServerTLSIdentity
            do { seen = try await TLSProbe.identity(host: host, port: components.port ?? 443) } catch {
                throw CLIError("cannot reach \(url) over TLS: \(error)")
            }
            guard seen.publicKeyPin == pin else {
                throw CLIError(
                    "\(url) presents TLS key \(seen.publicKeyPin), not the \(pin) pinned at enrolment; refusing to talk to it (ask your admin)"
                )
            }
        }
        // The connection carrying the token trusts only the CA given at enrolment, or else only the
        // pinned certificate: never the system's roots as well (spec 15.8).
        let trusted = [enrolment.caCertificatePEM ?? enrolment.pinnedCertificatePEM].compactMap { $0 }
        return try HTTPSyncTransport(baseURL: url, node: try store.identity().node, token: enrolment.token, trustedCertificatesPEM: trusted)
    }

    /// Runs one request against the central node, turning failures into one-line errors.
    static func call<T>(_ store: ReplicaStore, _ body: (HTTPSyncTransport) async throws -> T) async throws -> T {
        let transport = try await connect(store)
        do {
            let result = try await body(transport)
            await transport.shutdown()
            return result
        } catch let error as SyncError {
            await transport.shutdown()
            throw CLIError(error.description)
        } catch {
            await transport.shutdown()
            throw error
        }
    }
}
