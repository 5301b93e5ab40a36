import FieldSyncClient
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore

/// Reaching the central node this replica is enrolled with, for sync and admin commands.
enum CentralNode {
    /// An authenticated transport for the enrolled server (or `override`). Call `shutdown()` after use.
    static func connect(_ store: ReplicaStore, override: String? = nil) throws -> HTTPSyncTransport {
        guard let enrolment = try store.enrolment() else {
            throw CLIError("this replica is not enrolled with a central node: ask an admin for a code, then run `fieldsync enroll --server URL --code CODE`")
        }
        let url = override ?? enrolment.server
        try SyncCommand.checkURL(url)
        return try HTTPSyncTransport(baseURL: url, node: try store.identity().node, token: enrolment.token)
    }

    /// Runs one request against the central node, turning failures into one-line errors.
    static func call<T>(_ store: ReplicaStore, _ body: (HTTPSyncTransport) async throws -> T) async throws -> T {
        let transport = try connect(store)
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
