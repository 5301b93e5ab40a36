import ArgumentParser
import FieldSyncBlobs
import FieldSyncCore
import FieldSyncPostgres
import FieldSyncStore
import Foundation

/// `fieldsync verify`: checks a replica or central-node store end to end.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Check a store: integrity, signatures, version vectors, causal gaps, and state against a replay.",
        discussion: """
            Exits 0 when the store is sound and 1 naming every problem otherwise. Works on a replica or on \
            the central node's store. Attachment bytes are re-hashed too (bit rot): a replica's chunks \
            against their manifests, and the central node's blobs (STORE.blobs, or --blobs) against their \
            names; every receipt is checked against the pinned central node key.

            Examples:
              fieldsync verify
              fieldsync verify --store /srv/fieldsync/central.sqlite --json
              fieldsync verify --database postgres://fieldsync@db/fieldsync   # a central node on PostgreSQL
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Option(help: ArgumentHelp("The central node's blob folder (default: STORE.blobs when it holds blobs).", valueName: "DIR"))
    var blobs: String?
    @Option(help: ArgumentHelp("Check a central node on PostgreSQL instead (default: $FIELDSYNC_DATABASE_URL).", valueName: "URL"))
    var database: String?
    @Flag(help: "Print the report as JSON.") var json = false

    func run() async throws {
        if storeOptions.store == nil, let url = try DatabaseOption.url(database) { return try await verifyDatabase(url) }
        let store = try storeOptions.open()
        var report = try store.verify()
        let attachments = try await AttachmentCheck.run(store: store, blobs: blobs)
        report.problems += attachments.problems
        if json {
            print(
                JSONValue.object([
                    "attachments": [
                        "chunks": .int(Int64(attachments.chunks)), "bytes": .int(attachments.bytes),
                        "receipts": .int(Int64(attachments.receipts)), "blobs": .int(Int64(attachments.blobs)),
                        "damaged": .array(attachments.damaged.map(JSONValue.string)),
                    ],
                    "sound": .bool(report.isSound), "revisions": .int(Int64(report.revisions)), "records": .int(Int64(report.records)),
                    "verified_signatures": .int(Int64(report.verifiedSignatures)),
                    "problems": .array(report.problems.map(JSONValue.string)),
                    "set_aside": .array(
                        report.setAside.map { forked in
                            .object([
                                "node": .string(forked.dot.node.rawValue), "counter": .int(Int64(forked.dot.counter)),
                                "record": .string(forked.record.rawValue),
                                "hash": .string(forked.hash), "reason": .string(forked.reason), "detail": .string(forked.detail),
                                "stored": .string(RecordPresenter.isoTime(forked.stored)),
                            ])
                        }),
                ]).prettyText())
        } else {
            print("\(report.revisions) revisions, \(report.records) records, \(report.verifiedSignatures) signatures verified")
            if attachments.chunks + attachments.blobs + attachments.receipts > 0 {
                print(
                    "attachments: \(attachments.chunks) chunks and \(attachments.blobs) blobs re-hashed (\(ByteCount.text(attachments.bytes))), \(attachments.receipts) receipts checked"
                )
            }
            for problem in report.problems { print("problem: \(TerminalText.visible(problem))") }
            for forked in report.setAside {
                print("set aside: \(forked.dot) of record \(forked.record) (\(forked.reason): \(forked.detail))")
            }
        }
        if !report.isSound {
            if !json { print("the store is NOT sound (\(report.problems.count) problem\(report.problems.count == 1 ? "" : "s"))") }
            throw ExitCode(1)
        }
        if !json { print("the store is sound") }
    }
}

/// Re-hashing attachment bytes for `verify`: a replica's chunks against their manifests, the
/// central node's blobs against their names, and receipts against the pinned key.
struct AttachmentCheck {
    var chunks = 0
    var blobs = 0
    var bytes: Int64 = 0
    var receipts = 0
    /// The SHA-256 of every attachment with damaged bytes.
    var damaged: [String] = []
    var problems: [String] = []

    static func run(store: ReplicaStore, blobs folder: String?) async throws -> AttachmentCheck {
        var check = AttachmentCheck()
        for manifest in try store.localAttachments() {
            var bad: [Int] = []
            for (index, held) in store.blobs.heldChunks(of: manifest).enumerated() where held {
                check.chunks += 1
                check.bytes += Int64(manifest.length(ofChunk: index))
                if (try? store.blobs.chunk(index, of: manifest)) == nil { bad.append(index) }
            }
            if !bad.isEmpty {
                check.damaged.append(manifest.sha256)
                check.problems.append(
                    "attachment \(manifest.sha256): chunk\(bad.count == 1 ? "" : "s") \(bad.prefix(8).map(String.init).joined(separator: ", ")) damaged (the bytes no longer match the manifest)"
                )
            }
        }
        // A replica checks receipts against the key it pinned; the central node against its own.
        let key = try store.enrolment().map { $0.serverKey } ?? (try store.publicKey())
        var seen = Set<String>()
        for reference in try store.allAttachmentReferences() where seen.insert(reference.sha256).inserted {
            guard let receipt = try store.attachmentReceipt(reference.sha256) else { continue }
            check.receipts += 1
            let contents = try store.attachmentReferences(reference.sha256)
            guard let key, contents.contains(where: { receipt.vouches(for: reference.sha256, $0, issuerKey: key) }) else {
                check.problems.append("the receipt for attachment \(reference.sha256) does not verify with the pinned central node key")
                continue
            }
        }
        // The central node's blob folder: complete blobs live under objects/.
        let root = folder ?? store.path + ".blobs"
        if folder != nil || FileManager.default.fileExists(atPath: root + "/objects") {
            let storage = try FileBlobStorage(root: root)
            let result = try await storage.verifyAll()
            check.blobs = result.checked
            check.bytes += result.bytes
            for sha in result.damaged {
                check.damaged.append(sha)
                check.problems.append("blob \(sha) in \(root) is damaged: its bytes no longer hash to its name")
            }
        }
        return check
    }
}

extension VerifyCommand {
    /// The same checks on a PostgreSQL central node, with its blobs (in the database, or --blobs).
    func verifyDatabase(_ url: PostgresURL) async throws {
        let folder = blobs
        let (report, blobCheck) = try await DatabaseOption.withStore(url) { store in
            let report = try await store.verify()
            let storage: any BlobStorage = try folder.map { try FileBlobStorage(root: $0) } ?? PostgresBlobStorage(store: store)
            return (report, try await storage.verifyAll())
        }
        var problems = report.problems
        for sha in blobCheck.damaged { problems.append("attachment \(sha): the central node's copy does not hash to its name") }
        if json {
            print(
                JSONValue.object([
                    "attachments": [
                        "chunks": 0, "bytes": .int(blobCheck.bytes), "receipts": .int(Int64(report.receipts)),
                        "blobs": .int(Int64(blobCheck.checked)), "damaged": .array(blobCheck.damaged.map(JSONValue.string)),
                    ],
                    "sound": .bool(problems.isEmpty), "revisions": .int(Int64(report.revisions)), "records": .int(Int64(report.records)),
                    "verified_signatures": .int(Int64(report.verifiedSignatures)), "problems": .array(problems.map(JSONValue.string)),
                    "set_aside_count": .int(Int64(report.setAside)),
                ]).prettyText())
        } else {
            print("\(report.revisions) revisions, \(report.records) records, \(report.verifiedSignatures) signatures verified")
            print(
                "attachments: \(blobCheck.checked) blobs re-hashed (\(ByteCount.text(blobCheck.bytes))), \(report.receipts) receipts checked"
            )
            for problem in problems { print("problem: \(TerminalText.visible(problem))") }
            if report.setAside > 0 { print("\(report.setAside) revisions set aside as fork evidence") }
        }
        if !problems.isEmpty {
            if !json { print("the database is NOT sound (\(problems.count) problem\(problems.count == 1 ? "" : "s"))") }
            throw ExitCode(1)
        }
        if !json { print("the database is sound") }
    }
}
