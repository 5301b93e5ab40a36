import ArgumentParser
import FieldSyncBlobs
import FieldSyncClient
import FieldSyncCore
import FieldSyncPostgres
import FieldSyncProtocol
import FieldSyncServer
import FieldSyncStore
import Foundation
import Hummingbird
import Logging

/// `fieldsync serve`: runs the central node over embedded SQLite.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the central node (HTTP, or HTTPS with --tls-cert; embedded SQLite, or PostgreSQL with --database).",
        discussion: """
            The store is created on first start. SIGINT or SIGTERM shut the node down cleanly: a batch \
            being stored either commits or rolls back.

            The central node's store is plaintext (it must read what it checks): keep it on an \
            encrypted disk, as docs/DEPLOYMENT.md shows (LUKS, unlocked by a person or the TPM).

            With --database (or $FIELDSYNC_DATABASE_URL) the node runs on PostgreSQL instead, and any \
            number of `serve` instances may share that database behind a load balancer \
            (docs/DEPLOYMENT.md). Attachment bytes then live in the database, or in --blobs DIR when \
            given (a folder every instance reaches).

            Examples:
              fieldsync serve --store /srv/fieldsync/central.sqlite --host 0.0.0.0 --port 8080
              fieldsync serve --database postgres://fieldsync:PASSWORD@db.internal:5432/fieldsync?sslmode=verify-full
            """)

    @Option(
        help: ArgumentHelp(
            "The server's store (default: $FIELDSYNC_STORE, else $XDG_DATA_HOME/fieldsync/server.sqlite).", valueName: "PATH"))
    var store: String?
    @Option(
        help: ArgumentHelp(
            "Run on PostgreSQL: postgres://USER:PASSWORD@HOST:PORT/DB[?sslmode=require] (default: $FIELDSYNC_DATABASE_URL).",
            valueName: "URL"))
    var database: String?
    @Option(help: "The address to listen on.") var host = "127.0.0.1"
    @Option(help: "The port to listen on; 0 picks a free one.") var port = 8080
    @Option(help: ArgumentHelp("Serve HTTPS with this certificate chain (PEM).", valueName: "PEM")) var tlsCert: String?
    @Option(help: ArgumentHelp("The private key of --tls-cert (PEM).", valueName: "PEM")) var tlsKey: String?
    @Flag(help: "Record client addresses in the audit log (off by default: a seized server must not show who synced from where).")
    var logAddresses = false
    @Option(help: ArgumentHelp("Where attachment bytes are kept (default: beside the store, STORE.blobs).", valueName: "DIR"))
    var blobs: String?
    @Option(help: ArgumentHelp("The largest attachment accepted: bytes, or 500MiB, 16GiB…", valueName: "SIZE"))
    var maxAttachmentSize = "16GiB"
    @Option(help: ArgumentHelp("Attachment bytes each account may store (default: no quota).", valueName: "SIZE"))
    var attachmentQuota: String?
    @Option(help: ArgumentHelp("Drop uploads nobody touched for this long: 7d, 12h, 90m (default 7d).", valueName: "DURATION"))
    var uploadExpiry = "7d"

    /// `1024`, `500MiB`, `16GiB`, `2TB`…: binary or decimal units, bytes when none.
    static func bytes(_ text: String, option: String) throws -> Int64 {
        let units: [(String, Int64)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40), ("KB", 1000), ("MB", 1_000_000),
            ("GB", 1_000_000_000), ("TB", 1_000_000_000_000), ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("T", 1 << 40), ("B", 1),
        ]
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let (digits, factor) = units.first { trimmed.hasSuffix($0.0) }.map { (String(trimmed.dropLast($0.0.count)), $0.1) } ?? (trimmed, 1)
        guard let count = Int64(digits.trimmingCharacters(in: .whitespaces)), count > 0, count <= Int64.max / factor else {
            throw ValidationError("\(option) \(text): give a size such as 1073741824, 500MiB or 16GiB")
        }
        return count * factor
    }

    /// `7d`, `12h`, `90m`, `30s` or seconds.
    static func seconds(_ text: String, option: String) throws -> Double {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        var digits = Substring(text)
        var unit: Double = 1
        if let last = text.last, let factor = units[last] {
            unit = factor
            digits = text.dropLast()
        }
        guard let count = Double(digits), count > 0 else {
            throw ValidationError("\(option) \(text): give a duration such as 7d, 12h or 90m")
        }
        return count * unit
    }

    func validate() throws {
        _ = try Self.bytes(maxAttachmentSize, option: "--max-attachment-size")
        if let attachmentQuota { _ = try Self.bytes(attachmentQuota, option: "--attachment-quota") }
        _ = try Self.seconds(uploadExpiry, option: "--upload-expiry")
        guard (0...65535).contains(port) else { throw ValidationError("--port must be from 0 to 65535") }
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("give --tls-cert and --tls-key together") }
    }

    /// `--store`, else `$FIELDSYNC_STORE`, else `server.sqlite` in the XDG data folder.
    static func storePath(_ store: String?) -> String { StoreOptions.resolve(store, defaultFile: "server.sqlite") }

    func run() async throws {
        if let url = try DatabaseOption.url(database) {
            guard store == nil else { throw CLIError("give --store (SQLite) or --database (PostgreSQL), not both") }
            return try await runOnPostgres(url)
        }
        let path = Self.storePath(store)
        let replica: ReplicaStore
        if FileManager.default.fileExists(atPath: path) {
            replica = try ReplicaStore.open(at: path, access: .pool)
        } else {
            replica = try ReplicaStore.create(at: path, name: "central", now: nowMilliseconds(), access: .pool)
            print("fieldsync serve: created the store \(path)")
        }
        let logger = Self.bootstrapLogging()
        let pinLine = try self.pinLine(serverKey: try replica.publicKey())
        let scheme = tlsCert == nil ? "http" : "https"
        let blobFolder = blobs ?? path + ".blobs"
        let blobStorage: FileBlobStorage
        do { blobStorage = try FileBlobStorage(root: blobFolder) } catch { throw CLIError("cannot use --blobs \(blobFolder): \(error)") }
        let configuration = try self.configuration(blobs: blobStorage)
        let storage = SQLiteSyncStorage(replica: replica)
        try await storage.startDirectoryEpoch()
        let app = try buildApplication(storage: storage, configuration: configuration, logger: logger) {
            [pinLine] boundPort in
            print("fieldsync serve: listening on \(scheme)://\(host):\(boundPort) (store \(path))\(pinLine)")
            fflush(nil)
        }
        // Close the store on every way out: SQLite then folds the write-ahead log into the main
        // file and removes it, so a copy of the stopped node's file is complete.
        do { try await app.runService() } catch {
            try? replica.close()
            throw error
        }
        try replica.close()
    }

    /// The server's logger, at info unless `FIELDSYNC_LOG_LEVEL` chose otherwise (``CommandLogging``).
    static func bootstrapLogging() -> Logger {
        CommandLogging.bootstrap(.info)
        return Logger(label: "fieldsync.serve")
    }

    /// The TLS pin and the central node key, for the "listening on" line.
    func pinLine(serverKey: String) throws -> String {
        var line = ""
        if let tlsCert {
            do { line = "; TLS public key \(try TLSProbe.pin(ofCertificateFile: tlsCert))" } catch {
                throw CLIError("cannot use --tls-cert \(tlsCert): \(error)")
            }
        }
        // The key that certifies every enrolled node: documenters may check it with `enroll --server-key`.
        return line + "; central node key \(CentralNodeKey.fingerprint(ofPublicKey: serverKey))"
    }

    func configuration(blobs: any BlobStorage) throws -> ServerConfiguration {
        let attachments = AttachmentConfiguration(
            blobs: blobs, maximumSize: try Self.bytes(maxAttachmentSize, option: "--max-attachment-size"),
            quota: try attachmentQuota.map { try Self.bytes($0, option: "--attachment-quota") },
            uploadExpiry: try Self.seconds(uploadExpiry, option: "--upload-expiry"))
        let configuration = ServerConfiguration(
            host: host, port: port, tlsCertificatePath: tlsCert, tlsKeyPath: tlsKey, logAddresses: logAddresses, attachments: attachments)
        do { _ = try configuration.tlsConfiguration() } catch {
            throw CLIError("cannot set up HTTPS from --tls-cert/--tls-key: \(error)")
        }
        return configuration
    }

    /// The same node over a PostgreSQL database that other instances may share.
    func runOnPostgres(_ url: PostgresURL) async throws {
        let logger = Self.bootstrapLogging()
        let (host, scheme) = (self.host, tlsCert == nil ? "http" : "https")
        let blobFolder = blobs
        let command = self
        try await DatabaseOption.withStore(url, logger: logger) { store in
            let blobStorage: any BlobStorage
            if let blobFolder {
                do { blobStorage = try FileBlobStorage(root: blobFolder) } catch {
                    throw CLIError("cannot use --blobs \(blobFolder): \(error)")
                }
            } else {
                blobStorage = PostgresBlobStorage(store: store)
            }
            let configuration = try command.configuration(blobs: blobStorage)
            let pinLine = try command.pinLine(serverKey: try await store.serverKey())
            try await store.startDirectoryEpoch()
            let app = try buildApplication(storage: store, configuration: configuration, logger: logger) { boundPort in
                print("fieldsync serve: listening on \(scheme)://\(host):\(boundPort) (database \(url))\(pinLine)")
                fflush(nil)
            }
            try await app.runService()
        }
    }
}
