import Crypto
import FieldSyncStore
import Foundation

/// The key file beside an encrypted replica (`REPLICA.keys`, mode 0600): the replica's data key
/// wrapped under each passphrase, in a fixed number of equal slots (format: docs/SECURITY.md).
///
/// - The header holds the scrypt cost, one salt and a random file id. Each passphrase derives one
///   key-encryption key, which opens at most one slot (ChaCha20-Poly1305, the header as associated
///   data, so a changed cost or salt opens nothing).
/// - Unused slots are random bytes, so no one can tell how many passphrases there are, nor whether
///   one of them is a duress passphrase.
/// - Which slots are in use is itself sealed, under a key derived from the data key, so that
///   adding a passphrase never overwrites another one's slot.
public struct KeyFile: Sendable {
    public static let slotCount = 8
    static let magic: [UInt8] = Array("FSKEYS".utf8) + [0, 1]
    static let headerSize = 64
    static let mapSize = 64
    static let payloadSize = 164
    static let slotSize = 12 + payloadSize + 16
    public static let fileSize = headerSize + mapSize + slotCount * slotSize
    /// The longest decoy name a duress slot carries, in UTF-8 bytes.
    static let maximumDecoyName = payloadSize - 34

    /// What a slot holds.
    public enum SlotKind: UInt8, Sendable {
        case free = 0
        case passphrase = 1
        /// Opens a decoy replica, and destroys every other slot when used.
        case duress = 2
    }

    /// What a passphrase opened.
    public enum Opened: Sendable {
        case replica(StoreKey, slot: Int)
        /// The duress passphrase: the decoy's key, and the name the decoy replica takes.
        case duress(StoreKey, decoyName: String, slot: Int)
    }

    public let path: String
    public private(set) var kdf: PassphraseKDF
    public private(set) var fileID: [UInt8]
    private var salt: [UInt8]
    private var map: [UInt8]
    private var slots: [[UInt8]]

    /// The key file of the replica at `store`.
    public static func path(forStore store: String) -> String { store + ".keys" }

    // MARK: Reading

    public static func read(at path: String) throws(VaultError) -> KeyFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw VaultError(.missing, "the key file \(path) is missing: without it the replica cannot be opened")
        }
        let bytes = Array(data)
        guard bytes.count >= magic.count, Array(bytes[0..<magic.count]) == magic else {
            throw VaultError(.tampered, "\(path) is not a FieldSync key file (or it was overwritten)")
        }
        guard bytes.count == fileSize else {
            throw VaultError(.truncated, "the key file \(path) is truncated or damaged (\(bytes.count) bytes, not \(fileSize))")
        }
        guard bytes[12] == UInt8(slotCount), bytes[8] == 1, bytes[13] == 0, bytes[14] == 0, bytes[15] == 0 else {
            throw VaultError(.tampered, "the key file \(path) has a header this version never writes: it was tampered with")
        }
        let kdf = try PassphraseKDF(checking: bytes[9], r: bytes[10], p: bytes[11], in: path)
        var slots: [[UInt8]] = []
        for index in 0..<slotCount {
            let start = headerSize + mapSize + index * slotSize
            slots.append(Array(bytes[start..<start + slotSize]))
        }
        return KeyFile(
            path: path, kdf: kdf, fileID: Array(bytes[48..<64]), salt: Array(bytes[16..<48]),
            map: Array(bytes[headerSize..<headerSize + mapSize]), slots: slots)
    }

    private init(path: String, kdf: PassphraseKDF, fileID: [UInt8], salt: [UInt8], map: [UInt8], slots: [[UInt8]]) {
        self.path = path
        self.kdf = kdf
        self.fileID = fileID
        self.salt = salt
        self.map = map
        self.slots = slots
    }

    var header: [UInt8] {
        var header = Self.magic + [1, kdf.log2N, PassphraseKDF.r, PassphraseKDF.p, UInt8(Self.slotCount), 0, 0, 0]
        header += salt + fileID
        return header
    }

    /// The key-encryption key of `passphrase` for this file: one scrypt run (the costly step).
    public func keyEncryptionKey(_ passphrase: String) throws -> SymmetricKey {
        try kdf.deriveKey(from: passphrase, salt: salt)
    }

    /// Opens the slot `passphrase` opens; a wrong passphrase is one line, and nothing changes.
    public func open(passphrase: String) throws -> Opened {
        let kek = try keyEncryptionKey(passphrase)
        guard let opened = open(with: kek) else {
            throw VaultError(.wrongPassphrase, "wrong passphrase for \(path) (or the key file was altered)")
        }
        return opened
    }

    public func open(with kek: SymmetricKey) -> Opened? {
        for index in 0..<Self.slotCount {
            guard let payload = try? openSlot(index, with: kek), let kind = SlotKind(rawValue: payload[0]),
                let key = try? StoreKey(rawBytes: Array(payload[1..<33]))
            else { continue }
            switch kind {
            case .free: continue
            case .passphrase: return .replica(key, slot: index)
            case .duress:
                let length = min(Int(payload[33]), Self.maximumDecoyName)
                return .duress(key, decoyName: String(decoding: payload[34..<34 + length], as: UTF8.self), slot: index)
            }
        }
        return nil
    }

    private func openSlot(_ index: Int, with kek: SymmetricKey) throws -> [UInt8] {
        Array(try ChaChaPoly.open(ChaChaPoly.SealedBox(combined: slots[index]), using: kek, authenticating: header + [UInt8(index)]))
    }

    /// Which slot holds what, as sealed under `dataKey`; every slot is taken as unknown (in use)
    /// when the map does not open under it.
    public func slotKinds(dataKey: StoreKey) -> [SlotKind]? {
        guard
            let plain = try? ChaChaPoly.open(
                ChaChaPoly.SealedBox(combined: map), using: Self.mapKey(dataKey), authenticating: header + Array("map".utf8))
        else { return nil }
        return (0..<Self.slotCount).map { SlotKind(rawValue: Array(plain)[$0]) ?? .passphrase }
    }

    private static func mapKey(_ dataKey: StoreKey) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: dataKey.rawBytes), salt: Array("fieldsync key file".utf8),
            info: Array("slot map v1".utf8), outputByteCount: 32)
    }

    // MARK: Changing

    /// A new key file (not yet written) with one passphrase slot for `dataKey`.
    public static func make(at path: String, passphrase: String, dataKey: StoreKey, kdf: PassphraseKDF) throws -> KeyFile {
        var file = KeyFile(
            path: path, kdf: kdf, fileID: randomBytes(16), salt: randomBytes(32), map: randomBytes(mapSize),
            slots: (0..<slotCount).map { _ in randomBytes(slotSize) })
        let index = Int.random(in: 0..<slotCount)
        try file.seal(slot: index, kind: .passphrase, key: dataKey, with: try file.keyEncryptionKey(passphrase))
        var kinds = [SlotKind](repeating: .free, count: slotCount)
        kinds[index] = .passphrase
        try file.sealMap(kinds, dataKey: dataKey)
        return file
    }

    mutating func seal(slot index: Int, kind: SlotKind, key: StoreKey, decoyName: String = "", with kek: SymmetricKey) throws {
        var name = Array(decoyName.utf8)
        if name.count > Self.maximumDecoyName {
            // Cut at a character boundary.
            var cut = Self.maximumDecoyName
            while cut > 0, name[cut] & 0xC0 == 0x80 { cut -= 1 }
            name = Array(name[0..<cut])
        }
        var payload = [kind.rawValue] + key.rawBytes + [UInt8(name.count)] + name
        payload += Self.randomBytes(Self.payloadSize - payload.count)
        slots[index] = Array(try ChaChaPoly.seal(payload, using: kek, authenticating: header + [UInt8(index)]).combined)
    }

    mutating func sealMap(_ kinds: [SlotKind], dataKey: StoreKey) throws {
        var plain = kinds.map(\.rawValue)
        plain += [UInt8](repeating: 0, count: Self.mapSize - 28 - plain.count)
        map = Array(try ChaChaPoly.seal(plain, using: Self.mapKey(dataKey), authenticating: header + Array("map".utf8)).combined)
    }

    /// Adds a slot for `kek` (a new passphrase's key) holding `dataKey`, or, for `.duress`, a fresh
    /// decoy key and `decoyName`. Needs the data key: the slot map is sealed under it.
    public mutating func add(kind: SlotKind, kek: SymmetricKey, dataKey: StoreKey, decoyName: String = "") throws {
        guard var kinds = slotKinds(dataKey: dataKey) else {
            throw VaultError(.tampered, "the key file \(path) does not belong to this replica's key")
        }
        if kind == .duress, kinds.contains(.duress) {
            throw VaultError(.invalid, "a duress passphrase is already set; `fieldsync passphrase remove --duress` removes it first")
        }
        if open(with: kek) != nil { throw VaultError(.invalid, "that passphrase is already one of this replica's") }
        guard let free = kinds.indices.filter({ kinds[$0] == .free }).randomElement() else {
            throw VaultError(.invalid, "all \(Self.slotCount) passphrase slots are in use; remove one first")
        }
        try seal(slot: free, kind: kind, key: kind == .duress ? StoreKey.random() : dataKey, decoyName: decoyName, with: kek)
        kinds[free] = kind
        try sealMap(kinds, dataKey: dataKey)
    }

    /// Replaces the passphrase of `slot` (the one the current passphrase opened).
    public mutating func replace(slot index: Int, kek: SymmetricKey, dataKey: StoreKey) throws {
        // A new passphrase equal to another slot's (the duress one above all) would make two slots
        // open with it, and which one wins would depend on their order.
        switch open(with: kek) {
        case nil: break
        case .replica(_, let slot) where slot == index: break
        default: throw VaultError(.invalid, "the new passphrase is already another of this replica's passphrases")
        }
        try seal(slot: index, kind: .passphrase, key: dataKey, with: kek)
    }

    /// Frees `slot`, or the duress slot; refuses to free the last passphrase.
    public mutating func remove(slot index: Int?, dataKey: StoreKey) throws {
        guard var kinds = slotKinds(dataKey: dataKey) else {
            throw VaultError(.tampered, "the key file \(path) does not belong to this replica's key")
        }
        let target: Int
        if let index {
            target = index
            guard kinds.filter({ $0 == .passphrase }).count > 1 else {
                throw VaultError(.invalid, "that is the replica's only passphrase; add another before removing it")
            }
        } else {
            guard let duress = kinds.firstIndex(of: .duress) else { throw VaultError(.invalid, "no duress passphrase is set") }
            target = duress
        }
        slots[target] = Self.randomBytes(Self.slotSize)
        kinds[target] = .free
        try sealMap(kinds, dataKey: dataKey)
    }

    /// After the duress passphrase opened `slot`: every other slot becomes random bytes, and the
    /// duress slot an ordinary passphrase slot of the decoy (whose key becomes the data key).
    public mutating func keepOnly(duressSlot index: Int, kek: SymmetricKey, decoyKey: StoreKey) throws {
        for other in 0..<Self.slotCount where other != index { slots[other] = Self.randomBytes(Self.slotSize) }
        try seal(slot: index, kind: .passphrase, key: decoyKey, with: kek)
        var kinds = [SlotKind](repeating: .free, count: Self.slotCount)
        kinds[index] = .passphrase
        try sealMap(kinds, dataKey: decoyKey)
    }

    /// Every other slot destroyed, the duress slot kept as it is (the first step of using it).
    public mutating func destroyAllSlots(except index: Int) {
        for other in 0..<Self.slotCount where other != index { slots[other] = Self.randomBytes(Self.slotSize) }
        map = Self.randomBytes(Self.mapSize)
    }

    public var bytes: [UInt8] { header + map + slots.joined() }

    // MARK: Writing

    /// Writes a new key file; refuses to replace one.
    public func create() throws {
        if FileManager.default.fileExists(atPath: path) {
            throw VaultError(.invalid, "a key file already exists at \(path); refusing to overwrite it")
        }
        try SecureFile.writeAtomically(bytes, to: path)
    }

    /// Replaces the key file atomically, then overwrites the old copy's blocks (on a disk that
    /// writes in place, the old slots are then gone; on an SSD see docs/SECURITY.md).
    public func save() throws { try SecureFile.writeAtomically(bytes, to: path, shreddingOld: true) }

    /// Overwrites the key file where it lies, without a temporary copy: for the duress switch,
    /// where no copy of the old slots may be left behind.
    public func overwriteInPlace() throws { try SecureFile.overwrite(path, with: bytes) }

    /// Destroys every slot at once (random bytes over the whole file, flushed to the disk), then
    /// removes the file: no passphrase opens the replica any more.
    public static func destroy(at path: String) throws {
        try SecureFile.overwrite(path, with: randomBytes(fileSize))
        try? FileManager.default.removeItem(atPath: path)
    }

    public static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }
}
