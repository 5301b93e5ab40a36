import FieldSyncBlobs
import FieldSyncPostgres
import FieldSyncProtocol
import FieldSyncStore
import Foundation
import Logging

/// What the central node's routes need from their storage.
public typealias CentralStorage = SyncStorage & AccountStorage & AttachmentStorage

/// The central node's storage backends, for suites that run the same tests on each.
public enum CentralBackend: String, CaseIterable, Sendable, CustomStringConvertible {
    case sqlite
    case postgres

    public var description: String { rawValue }

    /// Runs `body` with a new, empty central storage of this kind, and its blob storage (a folder
    /// for SQLite, chunk rows for PostgreSQL). `damage` flips a byte of a complete blob, for bit-rot tests.
    public func with<T: Sendable>(
        in dir: TemporaryDirectory,
        _ body: @Sendable (_ storage: any CentralStorage, _ blobs: any BlobStorage, _ damage: BlobDamage) async throws -> T
    ) async throws -> T {
        switch self {
        case .sqlite:
            let store = try ReplicaStore.create(
                at: dir.file("central-\(UUID().uuidString.prefix(8)).sqlite"), name: "central", now: 1, access: .pool)
            let blobs = try FileBlobStorage(root: store.path + ".blobs")
            let damage = BlobDamage { sha, offset in
                let path = blobs.root + "/objects/\(sha.prefix(2))/\(sha)"
                chmod(path, 0o600)
                guard let handle = FileHandle(forUpdatingAtPath: path) else { return }
                try handle.seek(toOffset: UInt64(offset))
                let byte = try handle.read(upToCount: 1) ?? Data([0])
                try handle.seek(toOffset: UInt64(offset))
                handle.write(Data([byte[0] ^ 0xFF]))
                try handle.close()
            }
            return try await body(SQLiteSyncStorage(replica: store), blobs, damage)
        case .postgres:
            let url = try await PostgresTestCluster.freshDatabase()
            var logger = Logger(label: "fieldsync.test-postgres")
            logger.logLevel = .warning
            return try await PostgresCentralStore.withStore(url, logger: logger) { store in
                // Chunk rows hold 1 MiB each for the test files: the byte is in row offset >> 20.
                let damage = BlobDamage { sha, offset in
                    try await PostgresTestCluster.execute(
                        """
                        UPDATE blob_chunk SET bytes = overlay(bytes PLACING decode(lpad(to_hex(get_byte(bytes, \(offset & 0xFFFFF)) # 255), 2, '0'), 'hex') \
                        FROM \((offset & 0xFFFFF) + 1) FOR 1) WHERE sha = '\(sha)' AND index = \(offset >> 20)
                        """, on: url)
                }
                return try await body(store, PostgresBlobStorage(store: store), damage)
            }
        }
    }
}

/// Flips one byte of a complete blob where its backend keeps it.
public struct BlobDamage: Sendable {
    let flip: @Sendable (String, Int) async throws -> Void
    public init(_ flip: @escaping @Sendable (String, Int) async throws -> Void) { self.flip = flip }
    public func callAsFunction(_ sha: String, at offset: Int) async throws { try await flip(sha, offset) }
}
