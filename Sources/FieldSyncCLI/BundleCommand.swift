import ArgumentParser
import FieldSyncBlobs
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore
import FieldSyncVault
import Foundation

/// `fieldsync bundle`: moves revisions between replicas on a file (a USB stick), without a network.
struct BundleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle", abstract: "Exchange revisions by file, without a network.",
        subcommands: [BundleExportCommand.self, BundleImportCommand.self, BundleHeldCommand.self])
}

/// `fieldsync bundle held`: what bundles brought that this enrolled replica holds instead of merging.
struct BundleHeldCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "held", abstract: "List revisions from bundles held back until your central node vouches for them.",
        discussion: """
            An enrolled replica holds what its central node would refuse: revisions of a node it has \
            not vouched for, signed by a key it does not vouch for, or of a revoked device, and those \
            depending on them. They are neither merged nor pushed; `fieldsync sync` releases those the \
            central node vouches for by then.

            Example:
              fieldsync bundle held --json
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let store = try storeOptions.open()
        let held = try store.heldRevisions()
        if json {
            print(
                JSONValue.array(
                    held.map { h in
                        [
                            "id": .string(h.dot.description), "node": .string(h.dot.node.rawValue), "counter": .int(Int64(h.dot.counter)),
                            "record": .string(h.record.rawValue), "author": .string(h.author), "reason": .string(h.reason),
                            "held_since": .string(RecordPresenter.isoTime(h.stored)),
                        ]
                    }
                ).prettyText())
            return
        }
        if held.isEmpty {
            print("no held revisions")
            return
        }
        for h in held {
            print(
                TerminalText.visible(
                    "\(h.dot)  record \(h.record.short)  by \(h.author)  held since \(RecordPresenter.isoTime(h.stored)): \(h.reason)"))
        }
    }
}

struct BundleExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Write this replica's revisions to a bundle file.",
        discussion: """
            From an encrypted replica the bundle is sealed under a bundle passphrase, asked twice on a \
            terminal (or read from --bundle-passphrase-file); the importer needs it. Tell it by another \
            channel than the stick. --plaintext-bundle writes a readable bundle on purpose.

            Examples:
              fieldsync bundle export --out /media/usb/rima.bundle
              fieldsync bundle export --out to-omar.bundle --lacking from-omar.bundle   # only what Omar lacks
              fieldsync bundle export --out /media/usb/rima.bundle --with-attachments   # and rima.bundle.attachments/
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Option(help: "The bundle file to write.") var out: String
    @Flag(
        help:
            "Also write the attachment bytes this replica holds, in BUNDLE.attachments/ (parts of at most 1 GiB, sealed like the bundle)."
    )
    var withAttachments = false
    @Option(help: .private) var attachmentPartSize: Int64 = BlobParts.maximumPartBytes
    @Option(help: ArgumentHelp("A bundle written by the peer: export only the revisions it lacks.", valueName: "BUNDLE"))
    var lacking: String?
    @Option(help: ArgumentHelp("A file whose first line is the bundle passphrase (seals the bundle).", valueName: "FILE"))
    var bundlePassphraseFile: String?
    @Flag(help: "Write a plaintext bundle even from an encrypted replica: anyone who finds the file reads it.")
    var plaintextBundle = false

    func validate() throws {
        if plaintextBundle, bundlePassphraseFile != nil {
            throw ValidationError("--plaintext-bundle and --bundle-passphrase-file contradict each other; give one")
        }
        guard ((1 << 16)...BlobParts.maximumPartBytes).contains(attachmentPartSize) else {
            throw ValidationError("--attachment-part-size must be from 65536 to \(BlobParts.maximumPartBytes) bytes")
        }
    }

    func run() async throws {
        let store = try storeOptions.open()
        let sealing = !plaintextBundle && (store.isEncrypted || bundlePassphraseFile != nil)
        // Asked before anything is read, so a mistyped passphrase costs nothing.
        let passphrase = sealing ? try ReplicaKeys.newPassphrase(file: bundlePassphraseFile, what: "Bundle passphrase") : nil
        var peerKnowledge = VersionVector()
        if let lacking { peerKnowledge = try BundleImportCommand.read(lacking, passphraseFile: bundlePassphraseFile).knowledge }
        let identity = try store.identity()
        let revisions = CausalSort.sorted(try store.allRevisions().filter { !peerKnowledge.covers($0.dot) })
        let directory = try store.keyDirectory()
        let keys = Set(revisions.map(\.dot.node)).compactMap { directory[$0] }
        let bundle = BundleFile(
            from: identity.node, knowledge: try store.knowledge(), revisions: revisions, created: nowMilliseconds(), keys: keys)
        let kdf = passphrase == nil ? nil : PassphraseKDF.calibrated()
        if let passphrase, let kdf {
            try Self.writeAtomically(SealedBundle.seal(bundle.fileBytes, passphrase: passphrase, kdf: kdf), to: out)
        } else {
            try Self.writeAtomically(bundle.fileBytes, to: out)
        }
        print(
            "wrote \(revisions.count) revision\(revisions.count == 1 ? "" : "s") to \(out) (\(passphrase == nil ? "plaintext: anyone who finds it can read it" : "sealed under the bundle passphrase"))"
        )
        if withAttachments {
            let sealing = try passphrase.map { passphrase in try BundleAttachments.sealing(passphrase: passphrase, kdf: kdf!) }
            let written = try BundleAttachments.export(
                from: store, to: out + BundleAttachments.suffix, sealing: sealing, partBytes: attachmentPartSize)
            print(
                "wrote \(written.chunks) chunk\(written.chunks == 1 ? "" : "s") of \(written.attachments) attachment\(written.attachments == 1 ? "" : "s") (\(ByteCount.text(written.bytes))) in \(written.parts) part\(written.parts == 1 ? "" : "s") to \(out + BundleAttachments.suffix)/"
            )
        }
    }

    /// Writes to a temporary file beside `path`, then renames it, so a crash never leaves half a bundle.
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let temporary = path + ".partial"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(bytes), attributes: [.posixPermissions: 0o600]) else {
            throw CLIError("cannot write \(path): check that the folder exists and is writable")
        }
        guard rename(temporary, path) == 0 else {
            try? FileManager.default.removeItem(atPath: temporary)
            throw CLIError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}

struct BundleImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Apply the revisions of a bundle file that this replica lacks.",
        discussion: """
            A sealed bundle asks for its bundle passphrase on a terminal, or reads it from \
            --bundle-passphrase-file.

            Example:
              fieldsync bundle import /media/usb/omar.bundle
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "The bundle file.") var file: String
    @Option(help: ArgumentHelp("A file whose first line is the bundle's passphrase (for a sealed bundle).", valueName: "FILE"))
    var bundlePassphraseFile: String?
    @Option(
        help: ArgumentHelp(
            "The bundle's attachment folder (default: BUNDLE.attachments beside it, when present). Any subset of its parts imports.",
            valueName: "DIR"))
    var attachments: String?
    @Flag(help: "Print the outcome as JSON.") var json = false

    func run() async throws {
        let store = try storeOptions.open()
        var passphrase: String?
        let bundle = try Self.read(file, passphraseFile: bundlePassphraseFile, passphrase: &passphrase)
        // A bundle's claims about who a key belongs to, or its role, are not trusted: only the key.
        let keys = bundle.keys.map { KeyEntry(node: $0.node, publicKey: $0.publicKey, certificate: $0.certificate) }
        let enrolled = try store.enrolment() != nil
        let node = try store.identity().node
        let fresh = try store.newNodeID()
        let outcome: ReceiveOutcome
        do {
            // Causal order first: a bundle written by an older build, or after a fork was repaired,
            // may list a revision before one it depends on.
            let ordered = CausalSort.sorted(bundle.revisions)
            // An enrolled replica holds what its central node would refuse (an unknown or uncertified
            // node, a key it does not vouch for, a revoked device) instead of merging it, so that
            // nothing a bundle brings can block a later sync (spec 12.4).
            outcome = try store.receiveVerified(
                ordered, learning: keys, unconfirmed: true, remintingAs: enrolled ? nil : fresh, holding: enrolled, now: nowMilliseconds())
        } catch let error as ProtocolError {
            throw CLIError("\(file): \(error.message); nothing was imported")
        }
        // The bundle shows that this replica's node id also wrote elsewhere (a restored copy, a clone).
        // Enrolled, the next sync finds exactly where the histories part and re-mints; without a
        // server, the bundle's proof of where they part was used in the import's transaction.
        let reminted = outcome.reminted
        var forkNote: String?
        if reminted > 0 {
            forkNote =
                "this bundle holds other revisions under this replica's own node \(node): re-minted \(reminted) revision\(reminted == 1 ? "" : "s") of this replica as node \(fresh), then took the other copy's in; nothing was lost"
        } else if outcome.ownNodeForked {
            if enrolled {
                forkNote =
                    "this bundle holds other revisions under this replica's own node \(node) (a restored copy or a clone wrote them); run `fieldsync sync`: it re-mints this replica's branch and loses nothing"
            } else {
                forkNote =
                    "this bundle holds other revisions under this replica's own node \(node), but not where the two histories part; import a full bundle (without --lacking) of the other copy to re-mint"
            }
        }
        // Bytes after revisions: a chunk is kept only when a signed revision references its manifest.
        let folder = attachments ?? file + BundleAttachments.suffix
        var imported = BundleAttachments.Imported()
        if attachments != nil || FileManager.default.fileExists(atPath: folder) {
            guard FileManager.default.fileExists(atPath: folder) else { throw CLIError("no attachment folder at \(folder)") }
            imported = try BundleAttachments.importParts(
                from: folder, into: store,
                passphrase: { () throws -> String in
                    if let passphrase { return passphrase }
                    let asked = try Self.askPassphrase(for: folder, passphraseFile: bundlePassphraseFile)
                    passphrase = asked
                    return asked
                })
        }
        if json {
            print(
                JSONValue.object([
                    "attachments": [
                        "chunks": .int(Int64(imported.chunks)), "bytes": .int(imported.bytes), "complete": .int(Int64(imported.completed)),
                        "partial": .int(Int64(imported.partial)), "ignored": .int(Int64(imported.ignored)),
                        "damaged": .int(Int64(imported.damaged)),
                    ],
                    "new": .int(Int64(outcome.accepted)), "known": .int(Int64(outcome.duplicates)),
                    "new_conflicts": .int(Int64(outcome.newConflicts)), "set_aside": .int(Int64(outcome.setAside)),
                    "reminted": .int(Int64(reminted)), "held": .int(Int64(outcome.held.count)),
                    "held_nodes": .array(
                        Self.heldByNode(outcome).map {
                            ["node": .string($0.node.rawValue), "revisions": .int(Int64($0.count)), "reason": .string($0.reason)]
                        }),
                ]).canonicalText)
        } else {
            var line =
                "\(outcome.accepted) new revision\(outcome.accepted == 1 ? "" : "s"), \(outcome.duplicates) already known, \(outcome.newConflicts) new conflict\(outcome.newConflicts == 1 ? "" : "s")"
            if outcome.setAside > 0 {
                line += ", \(outcome.setAside) set aside (another content of a dot already held; kept as evidence, see `fieldsync verify`)"
            }
            print(line)
            for group in Self.heldByNode(outcome) {
                print(
                    "held \(group.count) revision\(group.count == 1 ? "" : "s") from node \(group.node): \(TerminalText.visible(group.reason)) (see `fieldsync bundle held`; released when your central node vouches for them)"
                )
            }
            if let forkNote { print(forkNote) }
            if imported.chunks + imported.ignored + imported.damaged > 0 || imported.completed + imported.partial > 0 {
                print(imported.summary)
            }
        }
        if !imported.problems.isEmpty {
            for problem in imported.problems { FileHandle.standardError.write(Data("fieldsync: \(TerminalText.visible(problem))\n".utf8)) }
            throw CLIError(
                "the revisions were imported, but \(imported.problems.count) attachment part\(imported.problems.count == 1 ? "" : "s") could not be read (see above); what verified was kept"
            )
        }
    }

    /// Held revisions per node, with the reason of the first (the others of a node mostly depend on it).
    static func heldByNode(_ outcome: ReceiveOutcome) -> [(node: NodeID, count: Int, reason: String)] {
        var groups: [(node: NodeID, count: Int, reason: String)] = []
        var index: [NodeID: Int] = [:]
        for (dot, reason) in outcome.held {
            if let i = index[dot.node] {
                groups[i].count += 1
            } else {
                index[dot.node] = groups.count
                groups.append((dot.node, 1, reason))
            }
        }
        return groups
    }

    static func read(_ path: String, passphraseFile: String?) throws -> BundleFile {
        var passphrase: String?
        return try read(path, passphraseFile: passphraseFile, passphrase: &passphrase)
    }

    static func askPassphrase(for path: String, passphraseFile: String?) throws -> String {
        if let passphraseFile { return try ReplicaKeys.read(passphraseFile: passphraseFile) }
        if let typed = try Terminal.ask("Bundle passphrase for \(path): ") { return typed }
        throw CLIError("\(path) is sealed: give its bundle passphrase (--bundle-passphrase-file FILE); nothing was imported")
    }

    /// Reads a bundle; `passphrase` is set to the bundle passphrase when it was asked for.
    static func read(_ path: String, passphraseFile: String?, passphrase asked: inout String?) throws -> BundleFile {
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("cannot read \(path)") }
        var bytes = Array(data)
        if SealedBundle.isSealed(bytes) {
            let passphrase = try askPassphrase(for: path, passphraseFile: passphraseFile)
            asked = passphrase
            do { bytes = try SealedBundle.open(bytes, passphrase: passphrase, file: path) } catch let error as VaultError {
                throw CLIError("\(error.message); nothing was imported")
            }
        }
        do { return try BundleFile(fileBytes: bytes) } catch {
            throw CLIError("\(path): \(error.message); nothing was imported")
        }
    }
}
