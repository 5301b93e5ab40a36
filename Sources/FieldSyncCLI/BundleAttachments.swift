import Crypto
import FieldSyncBlobs
import FieldSyncCore
import FieldSyncStore
import FieldSyncVault
import Foundation

/// A bundle's attachment sidecar, `BUNDLE.attachments/` (spec 12.6): written by
/// `bundle export --with-attachments`, read by `bundle import`. Parts of a sealed bundle are sealed
/// under a key derived from the same bundle passphrase with their own salt.
enum BundleAttachments {
    static let suffix = ".attachments"

    /// The key and parameters of sealed parts: scrypt cost (log2 N, r, p) and a fresh salt.
    static func sealing(passphrase: String, kdf: PassphraseKDF) throws -> (key: SymmetricKey, parameters: [UInt8]) {
        let salt = KeyFile.randomBytes(32)
        return (try kdf.deriveKey(from: passphrase, salt: salt), [kdf.log2N, PassphraseKDF.r, PassphraseKDF.p] + salt)
    }

    struct Written {
        var attachments = 0
        var chunks = 0
        var bytes: Int64 = 0
        var parts = 0
    }

    /// Writes every chunk this replica holds of every attachment it keeps.
    static func export(
        from store: ReplicaStore, to folder: String, sealing: (key: SymmetricKey, parameters: [UInt8])?,
        partBytes: Int64 = BlobParts.maximumPartBytes
    ) throws -> Written {
        let manifests = try store.localAttachments()
        let writer = try BlobPartWriter(folder: folder, sealing: sealing, maximumPartBytes: partBytes)
        for manifest in manifests { writer.add(manifest: manifest) }
        var written = Written()
        for manifest in manifests {
            var any = false
            for (index, held) in store.blobs.heldChunks(of: manifest).enumerated() where held {
                do { try writer.add(chunk: try store.blobs.chunk(index, of: manifest), index: index, of: manifest) } catch let error
                    as BlobError
                {
                    throw CLIError("\(error.description); run `fieldsync verify`")
                }
                written.chunks += 1
                written.bytes += Int64(manifest.length(ofChunk: index))
                any = true
            }
            if any { written.attachments += 1 }
        }
        try writer.finish()
        written.parts = writer.parts
        return written
    }

    struct Imported {
        var chunks = 0
        var bytes: Int64 = 0
        /// Attachments now complete here, and still partial, among those the parts touched.
        var completed = 0
        var partial = 0
        /// Chunks of attachments no signed revision here references.
        var ignored = 0
        /// Chunks whose bytes do not match their manifest.
        var damaged = 0
        var problems: [String] = []

        var summary: String {
            var line =
                "attachments: stored \(chunks) chunk\(chunks == 1 ? "" : "s") (\(ByteCount.text(bytes))); \(completed) attachment\(completed == 1 ? "" : "s") complete, \(partial) partial"
            if partial > 0 { line += " (import the other parts too; what is here is kept)" }
            if ignored > 0 { line += "; ignored \(ignored) chunk\(ignored == 1 ? "" : "s") that no signed revision references" }
            if damaged > 0 { line += "; refused \(damaged) damaged chunk\(damaged == 1 ? "" : "s")" }
            return line
        }
    }

    /// Stores every chunk of the parts in `folder` that verifies against a manifest a signed
    /// revision references; ignores the rest. Missing parts are no error: imports add up.
    static func importParts(from folder: String, into store: ReplicaStore, passphrase: () throws -> String) throws -> Imported {
        var imported = Imported()
        var keys: [[UInt8]: SymmetricKey] = [:]
        var touched: [String: AttachmentManifest] = [:]
        let now = nowMilliseconds()
        for part in BlobParts.parts(in: folder) {
            var key: SymmetricKey?
            do {
                if let parameters = try BlobParts.sealingParameters(of: part) {
                    if let known = keys[parameters] {
                        key = known
                    } else {
                        guard parameters.count == 35 else { throw BlobError("\(part) has sealing parameters of another format") }
                        let kdf = try PassphraseKDF(checking: parameters[0], r: parameters[1], p: parameters[2], in: part)
                        let derived = try kdf.deriveKey(from: try passphrase(), salt: Array(parameters[3...]))
                        keys[parameters] = derived
                        key = derived
                    }
                }
                var manifests: [String: AttachmentManifest] = [:]
                try BlobParts.read(part, key: key) { record in
                    switch record {
                    case .manifest(let bytes):
                        guard let manifest = try? AttachmentManifest(bytes: bytes) else { return }
                        // Kept only when a signed revision here references exactly this manifest.
                        guard (try? store.markLocal(manifest, now: now)) != nil else { return }
                        manifests[manifest.sha256] = manifest
                    case .chunk(let sha, let index, let bytes):
                        guard let manifest = manifests[sha] else {
                            imported.ignored += 1
                            return
                        }
                        touched[sha] = manifest
                        guard !store.blobs.hasChunk(sha, index) else { return }
                        do {
                            try bytes.withUnsafeBytes { try store.blobs.store($0, chunk: index, of: manifest) }
                            imported.chunks += 1
                            imported.bytes += Int64(bytes.count)
                        } catch {
                            imported.damaged += 1
                        }
                    }
                }
            } catch let error as BlobError {
                imported.problems.append(error.description)
            } catch let error as VaultError {
                imported.problems.append(error.message)
            }
        }
        for manifest in touched.values {
            if store.blobs.heldChunks(of: manifest).allSatisfy({ $0 }) { imported.completed += 1 } else { imported.partial += 1 }
        }
        return imported
    }
}
