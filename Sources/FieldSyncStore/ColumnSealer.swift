import Crypto
import FieldSyncCore
import Foundation
import GRDB
import _CryptoExtras

/// Seals the columns of an encrypted replica inside SQLite itself, so that only ciphertext ever
/// reaches the main file, its write-ahead log or a journal.
///
/// It registers five SQL functions on every connection; the store's SQL calls them around each
/// sensitive column, and a plaintext store (no key) gets the same functions as identities:
/// - `seal(value, place)` encrypts a text, blob or integer with ChaCha20-Poly1305 under a fresh
///   random nonce, padded to a size bucket, with `place` ("table.column/row key") as associated
///   data: a ciphertext moved to another row or column no longer opens.
/// - `unseal(value, place)` reverses it, or fails the statement.
/// - `lookup(id)` turns a record id into its token (AES-256 of the UUID's 16 bytes, stored as a
///   16-byte blob): equal ids give equal tokens, so indexes and joins work, and the UUIDv7's
///   creation time is hidden. Tokens fall in random order, so their indexes are kept small.
/// - `reveal(token)` turns a token back into the record id.
/// - `keyed(text)`: HMAC-SHA256 of `text`, for a unique column that is only compared.
///
/// `@unchecked Sendable`: its keys are immutable `SymmetricKey`s, which swift-crypto does not mark.
struct ColumnSealer: @unchecked Sendable {
    /// The version of the sealing scheme; part of every associated data, so a later scheme can never
    /// be confused with this one.
    static let scheme: UInt8 = 1
    static let probePlace = "sealing.probe"
    static let probeText = "fieldsync sealed replica"

    private let sealing: SymmetricKey?
    private let recordIDs: SymmetricKey?
    private let hashing: SymmetricKey?
    /// Tokens already computed: one statement names a record id several times (its row key and
    /// the places of its columns), and a batch touches each record more than once.
    private let tokens = TokenCache()

    init(key: StoreKey?) {
        sealing = key?.subkey("column seal v1")
        recordIDs = key?.subkey("record id v1")
        hashing = key?.subkey("keyed hash v1")
    }

    var isEncrypted: Bool { sealing != nil }

    func register(in db: Database) {
        let sealer = self
        SealerRegistry.set(self, for: db)
        db.add(function: DatabaseFunction("seal", argumentCount: 2, pure: false) { try sealer.seal($0[0], place: $0[1]) })
        db.add(function: DatabaseFunction("unseal", argumentCount: 2, pure: true) { try sealer.unseal($0[0], place: $0[1]) })
        db.add(function: DatabaseFunction("lookup", argumentCount: 1, pure: true) { try sealer.lookup($0[0]) })
        db.add(function: DatabaseFunction("reveal", argumentCount: 1, pure: true) { try sealer.reveal($0[0]) })
        db.add(function: DatabaseFunction("keyed", argumentCount: 1, pure: true) { try sealer.keyed($0[0]) })
    }

    // MARK: From Swift
    //
    // The batch paths seal in Swift, on all cores, before the rows are written; the places are
    // spelled exactly as the SQL of the reads spells them (the round-trip tests hold them together).

    /// The sealer of the connection `db` (registered when it was opened).
    static func of(_ db: Database) -> ColumnSealer { SealerRegistry.sealer(for: db) ?? ColumnSealer(key: nil) }

    func seal(text: String, place: String) throws -> DatabaseValue { try seal(text.databaseValue, place: place.databaseValue) }

    func seal(integer: Int64, place: String) throws -> DatabaseValue { try seal(integer.databaseValue, place: place.databaseValue) }

    /// The token of a record id (the id itself in a plaintext replica), and its text in a place.
    func token(_ id: RecordID) throws -> (value: DatabaseValue, text: String) {
        let value = try lookup(id.rawValue.databaseValue)
        switch value.storage {
        // As SQLite's hex() spells it in the places the SQL names.
        case .blob(let data): return (value, Self.hex(data).uppercased())
        default: return (value, String.fromDatabaseValue(value) ?? id.rawValue)
        }
    }

    // MARK: Sealing

    private enum Kind: UInt8 {
        case text = 0x74
        case blob = 0x62
        case integer = 0x69
    }

    func seal(_ value: DatabaseValue, place: DatabaseValue) throws -> DatabaseValue {
        guard let key = sealing else { return value }
        let kind: Kind
        let payload: [UInt8]
        switch value.storage {
        case .null: return .null
        case .string(let text): (kind, payload) = (.text, Array(text.utf8))
        case .blob(let data): (kind, payload) = (.blob, Array(data))
        case .int64(let number): (kind, payload) = (.integer, Array(String(number).utf8))
        case .double: throw SealingError("seal: a real number cannot be sealed")
        }
        var plaintext = [kind.rawValue] + payload + [0x80]
        plaintext += [UInt8](repeating: 0, count: Self.paddedLength(plaintext.count) - plaintext.count)
        let box = try ChaChaPoly.seal(plaintext, using: key, authenticating: try Self.associatedData(place))
        return Data([Self.scheme] + Array(box.combined)).databaseValue
    }

    func unseal(_ value: DatabaseValue, place: DatabaseValue) throws -> DatabaseValue {
        guard let key = sealing else { return value }
        let location = String.fromDatabaseValue(place) ?? "?"
        let bytes: Data
        switch value.storage {
        case .null: return .null
        case .blob(let data): bytes = data
        default: throw SealingError("\(location) holds a plaintext value in an encrypted replica: the file was altered")
        }
        guard bytes.count >= 1 + 12 + 16 + 1, bytes.first == Self.scheme else {
            throw SealingError("\(location) is not a sealed value of this version: the file was altered or damaged")
        }
        let plaintext: [UInt8]
        do {
            plaintext = Array(
                try ChaChaPoly.open(
                    ChaChaPoly.SealedBox(combined: bytes.dropFirst()), using: key, authenticating: Self.associatedData(place)))
        } catch {
            throw SealingError(
                "the sealed value at \(location) does not open: the file was altered, or values were moved between rows")
        }
        guard let end = plaintext.lastIndex(where: { $0 != 0 }), plaintext[end] == 0x80, end >= 1, let kind = Kind(rawValue: plaintext[0])
        else { throw SealingError("the sealed value at \(location) has bad padding") }
        let payload = plaintext[1..<end]
        switch kind {
        case .text: return String(decoding: payload, as: UTF8.self).databaseValue
        case .blob: return Data(payload).databaseValue
        case .integer:
            guard let number = Int64(String(decoding: payload, as: UTF8.self)) else { throw SealingError("\(location): not an integer") }
            return number.databaseValue
        }
    }

    /// The size a plaintext of `length` bytes is padded to: a multiple of 64 up to 256 bytes (a
    /// name or a title is not told apart from another by its length), then Padmé, which leaks at
    /// most O(log log n) bits of a length and pads by at most 12 %.
    static func paddedLength(_ length: Int) -> Int {
        length <= 256 ? max(64, (length + 63) / 64 * 64) : Padme.paddedLength(length)
    }

    private static let associatedDataPrefix = Array("fieldsync sealed column v\(scheme)\u{0}".utf8)

    private static func associatedData(_ place: DatabaseValue) throws -> [UInt8] {
        guard let text = String.fromDatabaseValue(place), !text.isEmpty else { throw SealingError("seal: a place is required") }
        return associatedDataPrefix + Array(text.utf8)
    }

    // MARK: Record ids

    func lookup(_ value: DatabaseValue) throws -> DatabaseValue {
        guard let key = recordIDs else { return value }
        if value.isNull { return .null }
        guard let text = String.fromDatabaseValue(value) else { throw SealingError("lookup: not a record id") }
        if let token = tokens.token(of: text) { return token.databaseValue }
        guard let uuid = Self.uuidBytes(text) else { throw SealingError("lookup: not a record id") }
        let token = Data(try AES._CBC.encrypt(uuid, using: key, iv: Self.zeroIV, noPadding: true))
        tokens.remember(token, of: text)
        return token.databaseValue
    }

    func reveal(_ value: DatabaseValue) throws -> DatabaseValue {
        guard let key = recordIDs else { return value }
        if value.isNull { return .null }
        guard case .blob(let data) = value.storage, data.count == 16 else {
            throw SealingError("a record token in the replica is malformed: the file was altered")
        }
        let token = Array(data)
        let uuid = Array(try AES._CBC.decrypt(token, using: key, iv: Self.zeroIV, noPadding: true))
        let h = Self.hex(uuid)
        let i = h.startIndex
        func part(_ a: Int, _ b: Int) -> Substring { h[h.index(i, offsetBy: a)..<h.index(i, offsetBy: b)] }
        return "\(part(0, 8))-\(part(8, 12))-\(part(12, 16))-\(part(16, 20))-\(part(20, 32))".databaseValue
    }

    func keyed(_ value: DatabaseValue) throws -> DatabaseValue {
        guard let key = hashing else { return value }
        if value.isNull { return .null }
        guard let text = String.fromDatabaseValue(value) else { throw SealingError("keyed: expected text") }
        return Self.hex(Array(HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: key))).databaseValue
    }

    // `AES._CBC` over exactly one block with a zero IV is the AES permutation itself: the token of
    // an id is deterministic, as a lookup key must be, and reveals nothing else about it.
    private static let zeroIV = try! AES._CBC.IV(ivBytes: [UInt8](repeating: 0, count: 16))

    private static func uuidBytes(_ text: String) -> [UInt8]? {
        let digits = text.filter { $0 != "-" }
        guard text.count == 36, digits.count == 32 else { return nil }
        return hexBytes(digits)
    }

    private static func hexBytes(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count / 2)
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x61...0x66: c - 0x61 + 10
            case 0x41...0x46: c - 0x41 + 10
            default: nil
            }
        }
        var index = 0
        while index < utf8.count {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func hex<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// A sealed column that does not open, or a value that cannot be sealed; SQLite reports it as the
/// failing statement's message.
struct SealingError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// SQL expressions that read sealed columns, written once: each names its place exactly as the
/// statement that wrote the value did.
enum Sealed {
    static let revisionBody = "unseal(body, 'revision.body/' || node || '/' || counter)"
    static let revisionReceived = "unseal(received, 'revision.received/' || node || '/' || counter)"
    static let recordState = "unseal(state, 'record.state/' || hex(id))"
    static let recordTitle = "unseal(title, 'record.title/' || hex(id))"
    /// The values of a new revision row: `?1` node, `?2` counter, `?3` record id, `?4` body, `?5` received.
    static let revisionValues =
        "(?1, ?2, lookup(?3), seal(?4, 'revision.body/' || ?1 || '/' || ?2), seal(?5, 'revision.received/' || ?1 || '/' || ?2))"
}

/// Record-id tokens by id, bounded; shared by the connections of one store.
final class TokenCache: @unchecked Sendable {
    private let lock = NSLock()
    private var byID: [String: Data] = [:]
    static let capacity = 50_000

    func token(of id: String) -> Data? {
        lock.lock()
        defer { lock.unlock() }
        return byID[id]
    }

    func remember(_ token: Data, of id: String) {
        lock.lock()
        defer { lock.unlock() }
        if byID.count >= Self.capacity { byID.removeAll(keepingCapacity: true) }
        byID[id] = token
    }
}

/// Which sealer each open connection uses, so that Swift code holding a `Database` can seal as its
/// SQL functions do. An entry is replaced when its address is reused by a new connection.
enum SealerRegistry {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var sealers: [ObjectIdentifier: ColumnSealer] = [:]

    static func set(_ sealer: ColumnSealer, for db: Database) {
        lock.lock()
        defer { lock.unlock() }
        sealers[ObjectIdentifier(db)] = sealer
    }

    static func sealer(for db: Database) -> ColumnSealer? {
        lock.lock()
        defer { lock.unlock() }
        return sealers[ObjectIdentifier(db)]
    }
}
