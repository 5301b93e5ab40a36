import ArgumentParser
import FieldSyncCore
import FieldSyncPostgres
import FieldSyncStore
import FieldSyncVault
import Foundation

/// `fieldsync backup`: a consistent copy of a replica or of the central node's store, taken live.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup", abstract: "Write a consistent copy of a store (a replica, or the central node's while it runs).",
        discussion: """
            The copy (mode 0600) of an encrypted replica stays encrypted, and its key file \
            (FILE.keys, the same passphrases) is written beside it: keep the two together. It holds everything committed when it starts, including what is only in the \
            write-ahead log, and passes `fieldsync verify`. It is marked as a backup: a replica restored \
            from it takes a new node id before its first change, so nothing it writes can collide with \
            what the original wrote after the copy was made. See docs/RELIABILITY.md for restoring.

            Examples:
              fieldsync backup --out /media/usb/rima-2026-12-01.fieldsync
              fieldsync backup --store /srv/fieldsync/central.sqlite --out /backup/central.sqlite
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Option(help: ArgumentHelp("The file to write; it must not exist yet.", valueName: "FILE")) var out: String
    @Flag(help: "Leave the attachment bytes (STORE.blobs) out of the copy.") var withoutAttachments = false
    @Option(
        help: ArgumentHelp(
            "Back up a central node on PostgreSQL with pg_dump --format=custom (restore: pg_restore); default: $FIELDSYNC_DATABASE_URL.",
            valueName: "URL"))
    var database: String?
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        if storeOptions.store == nil, let url = try DatabaseOption.url(database) { return try dumpDatabase(url) }
        let key = try storeOptions.keys.dataKey()
        let store = try ReplicaStore.open(at: storeOptions.path, key: key)
        if key != nil, FileManager.default.fileExists(atPath: KeyFile.path(forStore: out)) {
            throw CLIError("a key file already exists at \(KeyFile.path(forStore: out)); refusing to overwrite it")
        }
        try store.backup(to: out, now: nowMilliseconds())
        if key != nil {
            // The copy is sealed under the same key: its key file goes with it, or it opens never.
            let keys = try KeyFile.read(at: storeOptions.keys.keyFilePath)
            try SecureFile.writeAtomically(keys.bytes, to: KeyFile.path(forStore: out))
        }
        // Attachment bytes go too (FILE.blobs, sealed as they are): a restore without them would
        // keep the references and lose the evidence.
        var copiedBlobs = false
        if !withoutAttachments, FileManager.default.fileExists(atPath: store.blobs.root) {
            do { try FileManager.default.copyItem(atPath: store.blobs.root, toPath: out + ".blobs") } catch {
                throw CLIError("wrote \(out), but cannot copy the attachments to \(out).blobs: \(error.localizedDescription)")
            }
            copiedBlobs = true
        }
        let copy = try ReplicaStore.open(at: out, key: key)
        let status = try copy.status()
        try copy.close()
        if json {
            print(
                JSONValue.object([
                    "store": .string(store.path), "out": .string(out), "revisions": .int(Int64(status.revisions)),
                    "records": .int(Int64(status.records + status.deletedRecords)), "attachments": .bool(copiedBlobs),
                ]).canonicalText)
        } else {
            print(
                "wrote \(out): \(status.revisions) revisions, \(status.records + status.deletedRecords) records\(copiedBlobs ? ", attachments in \(out).blobs" : "") (a backup of \(store.path))"
            )
        }
    }
}

extension BackupCommand {
    /// `pg_dump --format=custom` of the database: one consistent snapshot while the node runs,
    /// restored with `pg_restore --dbname DB FILE` into an empty database (docs/DEPLOYMENT.md).
    func dumpDatabase(_ url: PostgresURL) throws {
        guard !FileManager.default.fileExists(atPath: out) else { throw CLIError("\(out) exists already; refusing to overwrite it") }
        let candidates =
            ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []).sorted(by: >).map {
                "/usr/lib/postgresql/\($0)/bin/pg_dump"
            } + ["/usr/bin/pg_dump"]
        guard let pgDump = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw CLIError("pg_dump is not installed: apt-get install postgresql-client-15")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: pgDump)
        // The password goes by environment, not the command line, which every local user can read.
        process.arguments = ["--format=custom", "--file", out, "--dbname", url.connectionStringWithoutPassword]
        var environment = ProcessInfo.processInfo.environment
        if let password = url.password { environment["PGPASSWORD"] = password }
        process.environment = environment
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            try? FileManager.default.removeItem(atPath: out)
            throw CLIError("pg_dump of \(url) failed: \(message.split(separator: "\n").first ?? "exit \(process.terminationStatus)")")
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? 0
        if json {
            print(JSONValue.object(["database": .string(url.description), "out": .string(out), "bytes": .int(Int64(size))]).canonicalText)
        } else {
            print("backed up \(url) to \(out) (pg_dump, custom format, \(ByteCount.text(Int64(size)))); restore with pg_restore")
        }
    }
}
