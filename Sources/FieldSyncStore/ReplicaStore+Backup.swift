import FieldSyncCore
import Foundation
import GRDB

extension ReplicaStore {
    /// Writes a consistent copy of this store to `destination` (mode 0600), including what is only
    /// in the write-ahead log, while other processes keep writing. The copy is marked as a backup:
    /// a replica opened from it takes a new node id before its first local write, so a restored
    /// laptop never reuses a dot (`docs/RELIABILITY.md`, "Backups and restores").
    public func backup(to destination: String, now: Int64) throws {
        if FileManager.default.fileExists(atPath: destination) {
            throw StoreError(.alreadyExists, "a file already exists at \(destination); refusing to overwrite it")
        }
        // Created 0600 first: VACUUM INTO keeps the mode of an existing empty file.
        guard FileManager.default.createFile(atPath: destination, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw StoreError(.io, "cannot create \(destination): check that the folder exists and is writable")
        }
        do {
            // VACUUM INTO reads one snapshot of the source in its own read transaction.
            try writer.writeWithoutTransaction { db in try db.execute(sql: "VACUUM INTO ?", arguments: [destination]) }
            let copy = try DatabaseQueue(path: destination)
            try copy.write { db in try db.execute(sql: "UPDATE replica SET backup = ? WHERE id = 1", arguments: [now]) }
            try copy.close()
        } catch {
            try? FileManager.default.removeItem(atPath: destination)
            if let error = error as? DatabaseError { throw StoreError.from(error, path: destination) }
            throw error
        }
    }

    /// When this file is a restored backup, takes a new node id before anything is written under
    /// the old one. Runs inside the caller's write transaction.
    static func leaveBackupState(_ db: Database, now: Int64) throws {
        guard let taken = try Int64.fetchOne(db, sql: "SELECT backup FROM replica WHERE id = 1") else { return }
        // The copy may itself have been a forked one: the next sync compares the retired id's history
        // with the central node's before anything is pushed.
        let old = try identity(db).node
        let held = try knowledge(db)[old]
        if held > 0 {
            try db.execute(
                sql:
                    "INSERT INTO unconfirmed_node (node, counter) VALUES (?, ?) ON CONFLICT (node) DO UPDATE SET counter = MAX(counter, excluded.counter)",
                arguments: [old.rawValue, Int64(held)])
        }
        try retireNodeID(
            db, reason: "restored from a backup made at \(taken) ms; a new node id keeps every dot unique", now: now,
            replacement: try Self.newNodeID(db))
        try db.execute(sql: "UPDATE replica SET backup = NULL WHERE id = 1")
    }

    /// The time `fieldsync backup` made this file, or nil when it is not an untouched backup.
    public func backupTime() throws -> Int64? {
        try read { db in try Int64.fetchOne(db, sql: "SELECT backup FROM replica WHERE id = 1") }
    }

    /// Closes the file: SQLite then checkpoints the write-ahead log into the main file and removes it.
    public func close() throws {
        // A pool closes its writer before its readers (GRDB issue 739), and a read-only connection
        // that closes last cannot remove the log: close the readers first.
        (writer as? DatabasePool)?.releaseMemory()
        do { try writer.close() } catch let error as DatabaseError { throw StoreError.from(error, path: path) }
    }
}
