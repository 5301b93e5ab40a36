import FieldSyncCore
import FieldSyncProtocol

/// Whether a revision's signature checks out against the keys this replica knows, and whether
/// its central node vouches for the key (spec 17.2).
public struct SignatureStatus: Sendable, Equatable {
    /// `verified` (a valid signature by this device's own key or by a key the pinned central node
    /// certified), `unverified` (valid, by a key learned on first use, not vouched for), `invalid`,
    /// `unsigned` or `unknown-key`.
    public var state: String
    public var signer: String?

    public init(of revision: Revision, in directory: KeyDirectory, ownKey: String) {
        let entry = directory[revision.dot.node]
        // A certificate names the signer only when the pinned central node issued it.
        signer = entry.flatMap { entry in
            directory.serverKey.flatMap { entry.isCertified(by: $0) ? entry.certificate?.user : nil } ?? entry.user
        }
        if revision.signature == nil {
            state = "unsigned"
        } else if let entry {
            if !SignatureCheck.isValid(revision, publicKeyBase64: entry.publicKey) {
                state = "invalid"
            } else if entry.publicKey == ownKey || directory.serverKey.map(entry.isCertified(by:)) == true {
                state = "verified"
            } else {
                state = "unverified"
            }
        } else {
            state = "unknown-key"
        }
    }

    /// As `show --history` prints it.
    public var text: String { state == "unverified" ? "unverified (key not vouched for)" : state }
}
