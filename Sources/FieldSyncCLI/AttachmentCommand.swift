import ArgumentParser
import Crypto
import FieldSyncBlobs
import FieldSyncClient
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore
import Foundation

/// `fieldsync attachment add|list|get|prune`: evidence files (photos, video, documents) attached
/// to records, content-addressed by SHA-256 and never altered (spec 19).
struct AttachmentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attachment", abstract: "Attach evidence files to records, list, fetch and prune them.",
        discussion: """
            An attachment is named by the SHA-256 of its original bytes, which are never altered (no \
            transcoding, no metadata stripping), so signatures such as C2PA or ProofMode stay valid. \
            `fieldsync sync` uploads them after the revisions; `prune` deletes local copies the central \
            node has signed a receipt for.

            Examples:
              fieldsync attach 0193a2 photo.jpg --caption "The market after the strike" --captured 2025-03-07
              fieldsync attachment list 0193a2
              fieldsync attachment get 0193a2 3f2a --out photo.jpg
              fieldsync attachment prune
            """,
        subcommands: [AttachmentAddCommand.self, AttachmentListCommand.self, AttachmentGetCommand.self, AttachmentPruneCommand.self])
}

/// `fieldsync attachment add` (alias `fieldsync attach`).
struct AttachmentAddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Attach files to a record (hashed, copied into the replica, one signed revision each).",
        discussion: """
            Each file is read once: hashed and copied into the replica's blob folder (sealed when the \
            replica is encrypted). Attaching the same bytes to the same record again changes nothing.

            Example:
              fieldsync attach 0193a2 photo.jpg voice.m4a --caption "Witness statement"
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "The record id, or any unique prefix of it.") var id: String
    @Argument(help: ArgumentHelp("The files to attach.", valueName: "FILE")) var files: [String]
    @Option(help: "A caption for every file attached.") var caption: String?
    @Option(help: ArgumentHelp("When the files were captured, as EDTF (2025-03-07, 2025-03~, 2025-03-06/2025-03-08).", valueName: "EDTF"))
    var captured: String?
    @Option(help: ArgumentHelp("The media type (default: from the file's extension).", valueName: "TYPE")) var mediaType: String?
    @Flag(help: "Print what was attached as JSON.") var json = false

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("give at least one FILE to attach") }
    }

    func run() async throws {
        let store = try storeOptions.open()
        let recordID = try store.resolveID(id)
        guard try store.record(recordID).map({ !$0.isDeleted }) == true else { throw CLIError("record \(recordID) is deleted or unknown") }
        var fields: [String: JSONValue] = [:]
        if let caption {
            try IncidentSchema.check(.string(caption), as: .text, at: "--caption")
            fields["caption"] = .string(caption)
        }
        if let captured {
            try IncidentSchema.check(.string(captured), as: .edtfDate, at: "--captured")
            fields["captured"] = .string(captured)
        }
        if let mediaType { try IncidentSchema.check(.string(mediaType), as: .mediaType, at: "--media-type") }
        var printed: [JSONValue] = []
        for file in files {
            guard FileManager.default.isReadableFile(atPath: file) else { throw CLIError("cannot read \(file)") }
            let name = (file as NSString).lastPathComponent
            let type = mediaType ?? MediaTypes.guess(for: name)
            var entry = fields
            entry["name"] = .string(name.isEmpty ? "attachment" : name)
            entry["media_type"] = .string(type)
            let staged = try store.blobs.staging()
            let manifest: AttachmentManifest
            do {
                manifest = try FileDigester.digest(file: file) { index, bytes, hash in
                    try staged.write(index, bytes, hash: hash, chunkSize: AttachmentContent.chunkSize(forSize: Self.size(of: file)))
                }
            } catch {
                staged.discard()
                throw CLIError("cannot attach \(file): \(error)")
            }
            let outcome: ReplicaStore.AttachOutcome
            do {
                outcome = try store.attach(record: recordID, manifest: manifest, staged: staged, fields: entry, now: nowMilliseconds())
            } catch {
                staged.discard()
                throw error
            }
            switch outcome {
            case .attached:
                if !json { print("attached \(name) (\(ByteCount.text(manifest.size)), sha256 \(manifest.sha256)) to \(recordID.short)") }
            case .alreadyAttached:
                if !json { print("\(name) is already attached to \(recordID.short) (sha256 \(manifest.sha256)); nothing changed") }
            }
            printed.append([
                "record": .string(recordID.rawValue), "sha256": .string(manifest.sha256), "size": .int(manifest.size),
                "name": entry["name"]!, "media_type": .string(type),
            ])
        }
        if json { print(JSONValue.array(printed).canonicalText) }
    }

    static func size(of file: String) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? NSNumber)?.int64Value ?? 0
    }
}

/// `fieldsync attach`: the short form of `attachment add`.
struct AttachCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attach", abstract: "Attach files to a record (the short form of `fieldsync attachment add`).",
        discussion: """
            Example:
              fieldsync attach 0193a2 photo.jpg --caption "The market after the strike"
            """)

    @OptionGroup var add: AttachmentAddCommand

    func run() async throws { try await add.run() }
}

/// One attachment of a record as `list` shows it.
struct AttachmentEntry {
    var sha256: String
    var content: AttachmentContent
    var fields: [String: JSONValue]

    /// The record's attachments (entries that were not removed), sorted by name then hash.
    static func all(of state: RecordState) -> [AttachmentEntry] {
        let object = state.fields["attachments"]?.objectValue ?? [:]
        return object.compactMap { sha, value -> AttachmentEntry? in
            guard let fields = value.objectValue, let content = fields["content"].flatMap(AttachmentContent.init(json:)) else { return nil }
            return AttachmentEntry(sha256: sha, content: content, fields: fields)
        }.sorted { ($0.fields["name"]?.stringValue ?? "", $0.sha256) < ($1.fields["name"]?.stringValue ?? "", $1.sha256) }
    }
}

/// `fieldsync attachment list ID`.
struct AttachmentListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List a record's attachments, whether their bytes are here, and their receipts.",
        discussion: """
            `local` is complete, partial or absent (the bytes on this laptop); `receipt` is verified \
            (the central node signed that it holds exactly these bytes), none, or invalid.

            Example:
              fieldsync attachment list 0193a2 --json
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "The record id, or any unique prefix of it.") var id: String
    @Flag(help: "Print the list as JSON.") var json = false

    func run() async throws {
        let store = try storeOptions.open()
        let recordID = try store.resolveID(id)
        guard let state = try store.record(recordID) else { throw CLIError("no record \(id)") }
        var rows: [JSONValue] = []
        for entry in AttachmentEntry.all(of: state) {
            var o: [String: JSONValue] = [
                "sha256": .string(entry.sha256), "size": .int(entry.content.size),
                "name": entry.fields["name"] ?? .null, "media_type": entry.fields["media_type"] ?? .null,
                "caption": entry.fields["caption"] ?? .null, "captured": entry.fields["captured"] ?? .null,
                "local": .string(try store.localState(of: entry.sha256).rawValue),
                "receipt": .string(try store.receiptStatus(entry.sha256, entry.content)),
            ]
            if state.isConflicted(at: "attachments.\(entry.sha256)") { o["conflicted"] = true }
            rows.append(.object(o))
        }
        if json {
            print(JSONValue.array(rows).canonicalText)
            return
        }
        if rows.isEmpty { print("record \(recordID.short) has no attachments") }
        for row in rows {
            let caption = row["caption"]?.stringValue.map { "  \"\(TerminalText.visible($0))\"" } ?? ""
            print(
                "\(row["sha256"]!.stringValue!.prefix(12))  \(ByteCount.text(row["size"]!.intValue!))  \(TerminalText.visible(row["name"]?.stringValue ?? "?"))  \(row["media_type"]?.stringValue ?? "?")  local \(row["local"]!.stringValue!)  receipt \(row["receipt"]!.stringValue!)\(caption)"
            )
        }
    }
}

/// `fieldsync attachment get ID SHA256-PREFIX --out FILE`.
struct AttachmentGetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get", abstract: "Write an attachment's original bytes to a file, fetching them from the central node if needed.",
        discussion: """
            The whole file's SHA-256 is checked before FILE appears: it is never partial or wrong. A \
            fetch that is cut off resumes from the chunks already here.

            Example:
              fieldsync attachment get 0193a2 3f2a9c --out photo.jpg
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "The record id, or any unique prefix of it.") var id: String
    @Argument(help: ArgumentHelp("The attachment's SHA-256, or a unique prefix of it.", valueName: "SHA256-PREFIX")) var sha: String
    @Option(help: ArgumentHelp("Where to write the bytes (must not exist).", valueName: "FILE")) var out: String
    @Option(help: "How often to retry a transient network error, with backoff.") var retries = 3

    func run() async throws {
        let store = try storeOptions.open()
        let recordID = try store.resolveID(id)
        guard let state = try store.record(recordID) else { throw CLIError("no record \(id)") }
        let matches = AttachmentEntry.all(of: state).filter { $0.sha256.hasPrefix(sha.lowercased()) }
        guard !sha.isEmpty, let entry = matches.first else { throw CLIError("record \(recordID.short) has no attachment \(sha)") }
        guard matches.count == 1 else { throw CLIError("\(sha) names \(matches.count) attachments of \(recordID.short); give more digits") }
        guard !FileManager.default.fileExists(atPath: out) else { throw CLIError("\(out) exists; refusing to overwrite it") }
        if try store.localState(of: entry.sha256) != .complete {
            let transport = try await CentralNode.connect(store)
            let transfer = AttachmentTransfer(store: store, transport: transport, retries: retries)
            var report = AttachmentTransfer.Report()
            let meter = ProgressMeter(enabled: isatty(STDERR_FILENO) == 1)
            do {
                try await transfer.fetch(entry.sha256, entry.content, report: &report) { _, done, total in
                    meter.show("fetched", done, total)
                }
                meter.end()
                await transport.shutdown()
            } catch {
                meter.end()
                await transport.shutdown()
                throw CLIError("cannot fetch \(entry.sha256) from the central node: \(error)")
            }
        }
        guard let manifest = try store.localManifest(of: entry.sha256), manifest.content == entry.content else {
            throw CLIError("the manifest of \(entry.sha256) is not here")
        }
        try AttachmentFile.write(manifest, from: store.blobs, to: out)
        print("wrote \(out) (\(ByteCount.text(manifest.size)), sha256 \(manifest.sha256) checked)")
    }
}

/// Writing an attachment's bytes out of the blob store, checked before the file appears.
enum AttachmentFile {
    static func write(_ manifest: AttachmentManifest, from blobs: ReplicaBlobStore, to out: String) throws {
        let folder = URL(fileURLWithPath: out).deletingLastPathComponent().path
        // One name per output file, so that what a killed `get` left is replaced, not piled up.
        let temporary = "\(folder)/.\((out as NSString).lastPathComponent).fieldsync-partial"
        unlink(temporary)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw CLIError("cannot write \(out): \(String(cString: strerror(errno)))") }
        var hasher = SHA256()
        do {
            for index in 0..<manifest.chunkCount {
                let bytes = try blobs.chunk(index, of: manifest)
                hasher.update(data: bytes)
                try bytes.withUnsafeBytes { try FileDigester.writeFully(descriptor, $0) }
            }
            guard ContentHash.hex(hasher.finalize()) == manifest.sha256 else {
                throw CLIError("the bytes of \(manifest.sha256) do not hash to it: the local copy is damaged (run `fieldsync verify`)")
            }
            guard fsync(descriptor) == 0 else { throw CLIError("cannot flush \(out) to disk") }
            close(descriptor)
        } catch {
            close(descriptor)
            unlink(temporary)
            if let error = error as? BlobError { throw CLIError(error.description) }
            throw error
        }
        // link, not rename: never replaces a file that appeared at `out` meanwhile. FAT32 and
        // exFAT (USB sticks) have no hard links: there, a rename after one more look.
        if link(temporary, out) == 0 {
            unlink(temporary)
            return
        }
        let failure = errno
        if [EPERM, EOPNOTSUPP, ENOSYS, EMLINK].contains(failure), !FileManager.default.fileExists(atPath: out), rename(temporary, out) == 0
        {
            return
        }
        unlink(temporary)
        throw CLIError("cannot create \(out): \(String(cString: strerror(failure)))")
    }
}

/// `fieldsync attachment prune`.
struct AttachmentPruneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune", abstract: "Delete local copies of attachments the central node holds (a verified receipt).",
        discussion: """
            Only a copy whose receipt is signed by the central node key pinned at enrolment, and names \
            exactly the size and manifest a record references, is deleted. Everything else is kept.

            Example:
              fieldsync sync && fieldsync attachment prune
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Flag(help: "Print what was pruned and kept as JSON.") var json = false

    func run() async throws {
        let store = try storeOptions.open()
        var pruned: [JSONValue] = []
        var kept: [JSONValue] = []
        var freed: Int64 = 0
        for manifest in try store.localAttachments() {
            let referenced = try store.attachmentReferences(manifest.sha256).contains(manifest.content)
            let receipt = try store.receiptStatus(manifest.sha256, manifest.content)
            guard referenced, receipt == "verified" else {
                kept.append([
                    "sha256": .string(manifest.sha256), "size": .int(manifest.size),
                    "reason": .string(receipt == "invalid" ? "the receipt does not verify" : "no receipt from the central node yet"),
                ])
                continue
            }
            freed += try store.dropLocal(manifest)
            pruned.append(["sha256": .string(manifest.sha256), "size": .int(manifest.size)])
        }
        if json {
            print(JSONValue.object(["pruned": .array(pruned), "kept": .array(kept), "freed_bytes": .int(freed)]).canonicalText)
            return
        }
        print(
            "pruned \(pruned.count) attachment\(pruned.count == 1 ? "" : "s") (\(ByteCount.text(freed)) freed); kept \(kept.count) without a verified receipt"
        )
    }
}

/// Sizes for people: 1.5 MiB.
enum ByteCount {
    static func text(_ bytes: Int64) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) bytes" : String(format: "%.1f %@", value, units[unit])
    }
}

/// A one-line progress display on a terminal: bytes and rate.
final class ProgressMeter: @unchecked Sendable {
    let enabled: Bool
    let start = Date()
    private var shown = Date.distantPast

    init(enabled: Bool) { self.enabled = enabled }

    func show(_ verb: String, _ done: Int64, _ total: Int64) {
        guard enabled, Date().timeIntervalSince(shown) > 0.2 || done == total else { return }
        shown = Date()
        let rate = Double(done) / max(0.001, Date().timeIntervalSince(start))
        FileHandle.standardError.write(
            Data("\r\u{1B}[K\(verb) \(ByteCount.text(done)) of \(ByteCount.text(total)), \(ByteCount.text(Int64(rate)))/s".utf8))
    }

    func end() {
        if enabled { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}

/// Media types by file extension, for `attach` without `--media-type`.
enum MediaTypes {
    static let byExtension: [String: String] = [
        "jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp", "heic": "image/heic",
        "heif": "image/heif", "tif": "image/tiff", "tiff": "image/tiff", "dng": "image/x-adobe-dng", "mp4": "video/mp4",
        "mov": "video/quicktime", "m4v": "video/x-m4v", "webm": "video/webm", "mkv": "video/x-matroska", "3gp": "video/3gpp",
        "m4a": "audio/mp4", "mp3": "audio/mpeg", "ogg": "audio/ogg", "opus": "audio/opus", "wav": "audio/wav", "amr": "audio/amr",
        "pdf": "application/pdf", "txt": "text/plain", "csv": "text/csv", "json": "application/json", "zip": "application/zip",
        "doc": "application/msword", "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "odt": "application/vnd.oasis.opendocument.text",
    ]

    static func guess(for name: String) -> String {
        byExtension[(name as NSString).pathExtension.lowercased()] ?? "application/octet-stream"
    }
}
