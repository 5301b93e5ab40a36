import FieldSyncPostgres
import Foundation
import Logging

/// `--database URL` (else `$FIELDSYNC_DATABASE_URL`): the central node on PostgreSQL, for `serve`
/// and the admin commands that act on the central node's data.
enum DatabaseOption {
    /// The URL given, or the environment's, or nil (the node is on SQLite).
    static func url(_ option: String?) throws -> PostgresURL? {
        guard let text = option ?? ProcessInfo.processInfo.environment["FIELDSYNC_DATABASE_URL"], !text.isEmpty else { return nil }
        do { return try PostgresURL(text) } catch let error as PostgresStoreError { throw CLIError(error.message) }
    }

    /// Runs `body` with the store, turning the store's failures into one-line errors.
    static func withStore<T: Sendable>(
        _ url: PostgresURL, logger: Logger = Logger(label: "fieldsync.postgres"), _ body: @Sendable (PostgresCentralStore) async throws -> T
    ) async throws -> T {
        do { return try await PostgresCentralStore.withStore(url, logger: logger, body) } catch let error as PostgresStoreError {
            throw CLIError(error.message)
        }
    }
}
