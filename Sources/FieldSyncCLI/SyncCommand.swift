import ArgumentParser
import FieldSyncClient
import FieldSyncCore
import FieldSyncStore
import Foundation
import Logging

/// `fieldsync sync`: exchanges revisions with the central node.
struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync", abstract: "Push what the server lacks, then pull what this replica lacks.",
        discussion: """
            Each batch is committed atomically: an interrupted sync loses nothing, and the next one resumes. \
            A replica restored from a copy, or copied to another laptop, is found before anything is pushed: \
            what it wrote is re-minted under a new node id and the server's revisions come back (see \
            docs/RELIABILITY.md).

            Examples:
              fieldsync sync                                  # the server given to `init --server`
              fieldsync sync --server http://127.0.0.1:8080 --json
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Option(help: "The central node's URL (overrides the one given to init).") var server: String?
    @Option(help: "How often to retry a transient network error, with backoff.") var retries = 3
    @Option(help: "Revisions per batch (1 to 1000).") var batchSize = 500
    @Option(
        help: ArgumentHelp(
            "Attachments: upload (send what the central node lacks, fetch nothing), all (also fetch every attachment this replica lacks) or none.",
            valueName: "MODE"))
    var attachments: AttachmentMode = .upload
    @Flag(help: "Print the summary as JSON.") var json = false

    /// What `sync` does with attachment bytes after the revisions.
    enum AttachmentMode: String, ExpressibleByArgument, CaseIterable {
        case upload, all, none
    }

    func validate() throws {
        guard retries >= 0, retries <= 100 else { throw ValidationError("--retries must be from 0 to 100") }
        guard (1...1000).contains(batchSize) else { throw ValidationError("--batch-size must be from 1 to 1000") }
    }

    static func checkURL(_ text: String) throws {
        guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw CLIError("\(text) is not a server URL; give one like http://127.0.0.1:8080")
        }
    }

    func run() async throws {
        let store = try storeOptions.open()
        let interactive = isatty(STDERR_FILENO) == 1
        let meter = ProgressMeter(enabled: interactive)
        let session = SyncSession(server: server, retries: retries, batchSize: batchSize, attachments: attachments)
        let outcome = try await session.run(store) { event in
            switch event {
            case .revisions(.nodeRetired(let old, let new)):
                FileHandle.standardError.write(Data("fieldsync: \(SyncSession.retiredText(old, new))\n".utf8))
            case .revisions(.retrying(let attempt, let delay, let reason)) where interactive:
                FileHandle.standardError.write(Data("fieldsync: \(TerminalText.visible(reason)); retry \(attempt) in \(delay) s\n".utf8))
            case .revisions(.pushed(let total)) where interactive:
                FileHandle.standardError.write(Data("\rpushed \(total)…".utf8))
            case .revisions(.pulled(let total)) where interactive:
                FileHandle.standardError.write(Data("\rpulled \(total)…".utf8))
            case .attachments(let verb, let done, let total):
                meter.show(verb, done, total)
            case .attachmentsStarted where interactive:
                FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
            case .finished:
                meter.end()
            default:
                break
            }
        }
        let (report, moved) = (outcome.report, outcome.attachments)
        for line in moved.failed { FileHandle.standardError.write(Data("fieldsync: attachment \(TerminalText.visible(line))\n".utf8)) }
        for line in moved.incomplete {
            FileHandle.standardError.write(Data("fieldsync: warning: attachment \(TerminalText.visible(line))\n".utf8))
        }
        if interactive { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        let duration = (report.durationSeconds * 100).rounded() / 100
        if json {
            var o: [String: JSONValue] = [
                "server": .string(outcome.url), "pushed": .int(Int64(report.pushed)), "pulled": .int(Int64(report.pulled)),
                "new_conflicts": .int(Int64(report.newConflicts)), "duration_seconds": .number(duration),
                "retries": .int(Int64(report.retries)), "node": .string(try store.identity().node.rawValue),
            ]
            if let old = report.retiredNode { o["retired_node"] = .string(old.rawValue) }
            o["reminted"] = .int(Int64(report.reminted))
            o["set_aside"] = .int(Int64(report.setAside))
            o["replaced"] = .int(Int64(report.replaced))
            o["released"] = .int(Int64(report.released))
            o["held_back"] = .int(Int64(report.heldBack))
            o["held"] = .int(Int64(try store.status().heldRevisions))
            o["attachments"] = [
                "uploaded": .int(Int64(moved.uploaded)), "uploaded_bytes": .int(moved.uploadedBytes),
                "downloaded": .int(Int64(moved.downloaded)), "downloaded_bytes": .int(moved.downloadedBytes),
                "receipts": .int(Int64(moved.receipts)), "retries": .int(Int64(moved.retries)), "failed": .int(Int64(moved.failed.count)),
            ]
            print(JSONValue.object(o).canonicalText)
        } else {
            for line in try SyncSession.summary(outcome, store: store) { print(line) }
        }
        // Never "success" while an attachment is still missing on the central node.
        if let failure = SyncSession.attachmentFailure(moved) { throw CLIError(failure) }
    }
}

/// One `fieldsync sync`, as the command and the console both run it: the revisions first, then
/// the attachment bytes (the central node accepts only bytes a revision references), with
/// progress events and the summary a person reads.
struct SyncSession: Sendable {
    var server: String?
    var retries = 3
    var batchSize = 500
    var attachments: SyncCommand.AttachmentMode = .upload

    enum Event: Sendable {
        case revisions(SyncProgress)
        case attachmentsStarted
        case attachments(verb: String, done: Int64, total: Int64)
        case finished
    }

    struct Outcome: Sendable {
        var url: String
        var report: SyncReport
        var attachments: AttachmentTransfer.Report
    }

    static func retiredText(_ old: NodeID, _ new: NodeID) -> String {
        "the server holds revisions of this replica's node \(old) that this replica lacks or holds otherwise (was it restored from a copy, or copied to another laptop?); it now writes as node \(new) and pulls the server's revisions back"
    }

    func run(_ store: ReplicaStore, events: @escaping @Sendable (Event) -> Void) async throws -> Outcome {
        let transport = try await CentralNode.connect(store, override: server)
        let url = transport.baseURL
        let driver = SyncDriver(store: store, transport: transport, batchSize: batchSize, retries: retries)
        let report: SyncReport
        do {
            report = try await driver.run { event in events(.revisions(event)) }
        } catch {
            await transport.shutdown()
            events(.finished)
            throw CLIError("sync with \(url) failed: \(error)")
        }
        var moved = AttachmentTransfer.Report()
        if attachments != .none {
            let transfer = AttachmentTransfer(store: store, transport: transport, retries: retries)
            do {
                events(.attachmentsStarted)
                moved = try await transfer.uploadAll { _, done, total in events(.attachments(verb: "uploaded", done: done, total: total)) }
                if attachments == .all {
                    let fetched = try await transfer.downloadAll { _, done, total in
                        events(.attachments(verb: "fetched", done: done, total: total))
                    }
                    moved.downloaded = fetched.downloaded
                    moved.downloadedBytes = fetched.downloadedBytes
                    moved.retries += fetched.retries
                    moved.failed += fetched.failed
                }
            } catch {
                events(.finished)
                await transport.shutdown()
                throw CLIError(
                    "sync with \(url): the revisions were exchanged, but moving attachments failed: \(error) (run `fieldsync sync` again: it resumes)"
                )
            }
        }
        events(.finished)
        await transport.shutdown()
        return Outcome(url: url, report: report, attachments: moved)
    }

    /// The lines `fieldsync sync` prints after a sync.
    static func summary(_ outcome: Outcome, store: ReplicaStore) throws -> [String] {
        let (report, moved) = (outcome.report, outcome.attachments)
        var lines: [String] = []
        if let old = report.retiredNode, let new = report.newNode, report.reminted > 0 {
            lines.append(
                "this replica had forked from the server's history of node \(old): re-minted \(report.reminted) revision\(report.reminted == 1 ? "" : "s") as node \(new); nothing was lost (the originals are kept aside, see `fieldsync verify`)"
            )
        }
        if report.replaced > 0 {
            lines.append(
                "took the central node's history of \(report.replaced) revision\(report.replaced == 1 ? "" : "s") that a bundle had brought from a forked replica; this replica's copies are kept aside"
            )
        }
        if report.setAside > 0 {
            lines.append(
                "the server kept \(report.setAside) relayed revision\(report.setAside == 1 ? "" : "s") aside: another content of \(report.setAside == 1 ? "its dot" : "their dots") is already there (a forked replica's; it re-mints on its next sync)"
            )
        }
        if report.heldBack > 0 {
            lines.append(
                "held back \(report.heldBack) revision\(report.heldBack == 1 ? "" : "s") a bundle had brought that your central node refuses (revoked or not vouched for); nothing of yours was lost\(report.reminted > 0 ? ", your work built on them was re-minted" : "")"
            )
        }
        if report.released > 0 {
            lines.append(
                "released \(report.released) held revision\(report.released == 1 ? "" : "s") from bundles: your central node vouches for them now"
            )
        }
        let held = try store.status().heldRevisions
        if held > 0 {
            lines.append(
                "still holding \(held) revision\(held == 1 ? "" : "s") from bundles that your central node does not vouch for (`fieldsync bundle held`)"
            )
        }
        if moved.uploaded + moved.downloaded + moved.receipts > 0 {
            lines.append(
                "attachments: uploaded \(moved.uploaded) (\(ByteCount.text(moved.uploadedBytes))), fetched \(moved.downloaded) (\(ByteCount.text(moved.downloadedBytes))), \(moved.receipts) receipt\(moved.receipts == 1 ? "" : "s") from the central node"
            )
        }
        let duration = (report.durationSeconds * 100).rounded() / 100
        lines.append("pushed \(report.pushed), pulled \(report.pulled), new conflicts \(report.newConflicts), \(duration) s")
        return lines
    }

    /// The error a sync ends with while an attachment it should have moved is still missing.
    static func attachmentFailure(_ moved: AttachmentTransfer.Report) -> String? {
        guard !moved.failed.isEmpty else { return nil }
        return
            "\(moved.failed.count) attachment\(moved.failed.count == 1 ? " was" : "s were") not moved (see above); keep the local copies and sync again"
    }
}
