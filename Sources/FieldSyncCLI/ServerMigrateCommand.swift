import ArgumentParser
import FieldSyncBlobs
import FieldSyncCore
import FieldSyncPostgres
import FieldSyncProtocol
import FieldSyncStore
import Foundation

/// `fieldsync server migrate`: moves a central node from its SQLite store to PostgreSQL.
struct ServerMigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Copy a central node from its SQLite store into an empty PostgreSQL database, and verify the copy.",
        discussion: """
            Copies everything: the node's identity and signing key (certificates and receipts stay \
            valid), every revision byte for byte in log order, fork evidence, accounts, devices, token \
            and code hashes, certificates, the audit log, attachment metadata and attachment bytes. \
            Then it verifies the database and compares it with the store. It refuses a database that \
            already holds a central node's data. Stop `fieldsync serve` on the store first.

            Example:
              fieldsync server migrate --from /srv/fieldsync/central.sqlite --to postgres://fieldsync:PASSWORD@db/fieldsync
            """)

    @Option(help: ArgumentHelp("The central node's SQLite store.", valueName: "PATH")) var from: String
    @Option(help: ArgumentHelp("The empty PostgreSQL database: postgres://USER:PASSWORD@HOST:PORT/DB.", valueName: "URL")) var to: String
    @Option(help: ArgumentHelp("The store's blob folder (default: FROM.blobs).", valueName: "DIR")) var blobs: String?
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        guard FileManager.default.fileExists(atPath: from) else { throw CLIError("\(from) does not exist") }
        guard let url = try DatabaseOption.url(to) else { throw CLIError("--to: give a postgres:// URL") }
        let source = try ReplicaStore.open(at: from)
        let snapshot = try source.centralNodeSnapshot()
        let folder = blobs ?? from + ".blobs"
        let files: FileBlobStorage? = FileManager.default.fileExists(atPath: folder) ? try FileBlobStorage(root: folder) : nil
        try await DatabaseOption.withStore(url) { store in try await store.importSnapshot(snapshot) }
        // Opened again: the identity is now the source's. Attachment bytes go through the same
        // checked upload path as a client's, chunk by chunk.
        let (copied, bytes, problems) = try await DatabaseOption.withStore(url) { store in
            var copied = 0
            var bytes: Int64 = 0
            var problems: [String] = []
            let target = PostgresBlobStorage(store: store)
            var done = Set<String>()
            for reference in snapshot.references where !done.contains(reference.sha256) {
                guard let files, let manifestBytes = snapshot.manifests[reference.content.manifest],
                    let manifest = try? AttachmentManifest(bytes: manifestBytes), try await files.state(of: manifest) == .complete
                else { continue }
                // Another manifest of the same bytes was copied already.
                if try await target.state(of: manifest) == .complete {
                    done.insert(reference.sha256)
                    continue
                }
                try await target.beginUpload(manifest)
                for index in 0..<manifest.chunkCount {
                    let chunk = try await files.readChunk(index, of: manifest)
                    let upload = try await target.openChunk(index, of: manifest, at: 0)
                    try chunk.withUnsafeBytes { try upload.append($0) }
                    try await upload.finish()
                }
                guard try await target.commit(manifest) == .committed else {
                    problems.append("attachment \(manifest.sha256): its bytes could not be committed")
                    continue
                }
                copied += 1
                bytes += manifest.size
                done.insert(reference.sha256)
            }
            // A receipt vouches that the node holds the bytes: each must have come along.
            for stored in snapshot.receipts where !done.contains(stored.receipt.sha256) {
                problems.append(
                    "attachment \(stored.receipt.sha256) has a receipt but its bytes were not found in \(folder) (give --blobs DIR)")
            }
            problems += try await Self.compare(snapshot, with: store)
            return (copied, bytes, problems)
        }
        guard problems.isEmpty else {
            for problem in problems { FileHandle.standardError.write(Data("fieldsync: \(problem)\n".utf8)) }
            throw CLIError("the copy in \(url) does not match \(from) (\(problems.count) problems above); do not serve it")
        }
        if json {
            print(
                JSONValue.object([
                    "revisions": .int(Int64(snapshot.revisions.count)), "accounts": .int(Int64(snapshot.accounts.count)),
                    "devices": .int(Int64(snapshot.devices.count)), "audit": .int(Int64(snapshot.audit.count)),
                    "attachments": .int(Int64(copied)), "attachment_bytes": .int(bytes), "verified": true,
                ]).canonicalText)
        } else {
            print(
                "migrated \(from) to \(url): \(snapshot.revisions.count) revisions, \(snapshot.accounts.count) accounts, \(snapshot.devices.count) devices, \(snapshot.audit.count) audit lines, \(copied) attachments (\(ByteCount.text(bytes))); verified"
            )
        }
    }

    /// What differs between the snapshot and the database once copied (nothing, when it worked).
    static func compare(_ snapshot: CentralNodeSnapshot, with store: PostgresCentralStore) async throws -> [String] {
        var problems = try await store.verify().problems
        var texts: [String] = []
        var knowledge = VersionVector()
        while true {
            let page = try await store.missing(from: knowledge, limit: 1000)
            for text in page.texts {
                texts.append(text)
                knowledge.add(try Revision(json: JSONValue(parsing: text)).dot)
            }
            if !page.more { break }
        }
        if texts != snapshot.revisions.map(\.text) { problems.append("the revisions differ from the store's, byte for byte or in order") }
        if try await store.serverKey() != snapshot.signingKey.publicKeyBase64 { problems.append("the central node key differs") }
        if try await store.accounts().count != snapshot.accounts.count { problems.append("the accounts differ") }
        if try await store.devices().count != snapshot.devices.count { problems.append("the devices differ") }
        if try await store.audit(limit: Int.max / 2).count != snapshot.audit.count { problems.append("the audit log differs") }
        return problems
    }
}
