import ArgumentParser
import FieldSyncClient
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncServer
import FieldSyncStore
import Foundation
import Hummingbird
import Logging

/// `fieldsync serve`: runs the central node over embedded SQLite.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run the central node (HTTP, or HTTPS with --tls-cert; embedded SQLite store).",
        discussion: """
            The store is created on first start. SIGINT or SIGTERM shut the node down cleanly: a batch \
            being stored either commits or rolls back.

            The central node's store is plaintext (it must read what it checks): keep it on an \
            encrypted disk, as docs/DEPLOYMENT.md shows (LUKS, unlocked by a person or the TPM).

            Example:
              fieldsync serve --store /srv/fieldsync/central.sqlite --host 0.0.0.0 --port 8080
            """)

    @Option(
        help: ArgumentHelp(
            "The server's store (default: $FIELDSYNC_STORE, else $XDG_DATA_HOME/fieldsync/server.sqlite).", valueName: "PATH"))
    var store: String?
    @Option(help: "The address to listen on.") var host = "127.0.0.1"
    @Option(help: "The port to listen on; 0 picks a free one.") var port = 8080
    @Option(help: ArgumentHelp("Serve HTTPS with this certificate chain (PEM).", valueName: "PEM")) var tlsCert: String?
    @Option(help: ArgumentHelp("The private key of --tls-cert (PEM).", valueName: "PEM")) var tlsKey: String?
    @Flag(help: "Record client addresses in the audit log (off by default: a seized server must not show who synced from where).")
    var logAddresses = false

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be from 0 to 65535") }
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("give --tls-cert and --tls-key together") }
    }

    /// `--store`, else `$FIELDSYNC_STORE`, else `server.sqlite` in the XDG data folder.
    static func storePath(_ store: String?) -> String { StoreOptions.resolve(store, defaultFile: "server.sqlite") }

    func run() async throws {
        let path = Self.storePath(store)
        let replica: ReplicaStore
        if FileManager.default.fileExists(atPath: path) {
            replica = try ReplicaStore.open(at: path, access: .pool)
        } else {
            replica = try ReplicaStore.create(at: path, name: "central", now: nowMilliseconds(), access: .pool)
            print("fieldsync serve: created the store \(path)")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let logger = Logger(label: "fieldsync.serve")
        var pinLine = ""
        if let tlsCert {
            do { pinLine = "; TLS public key \(try TLSProbe.pin(ofCertificateFile: tlsCert))" } catch {
                throw CLIError("cannot use --tls-cert \(tlsCert): \(error)")
            }
        }
        // The key that certifies every enrolled node: documenters may check it with `enroll --server-key`.
        pinLine += "; central node key \(CentralNodeKey.fingerprint(ofPublicKey: try replica.publicKey()))"
        let scheme = tlsCert == nil ? "http" : "https"
        let configuration = ServerConfiguration(
            host: host, port: port, tlsCertificatePath: tlsCert, tlsKeyPath: tlsKey, logAddresses: logAddresses)
        do { _ = try configuration.tlsConfiguration() } catch {
            throw CLIError("cannot set up HTTPS from --tls-cert/--tls-key: \(error)")
        }
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
}
