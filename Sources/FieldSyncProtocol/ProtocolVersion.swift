import FieldSyncCore

/// The sync protocol's version and limits (`Protocol/sync-protocol.md`, "Versioning" and "Limits").
public enum SyncProtocol {
    /// The version this build speaks; every message carries it in `protocol`.
    public static let version: Int64 = 2
    /// The most revisions in one push or pull batch.
    public static let maximumBatchRevisions = 1000
    /// The default number of revisions a client asks for per pull, and sends per push.
    public static let defaultBatchRevisions = 500
    /// The most node ids one device may hold on the central node: its enrolled one and those it
    /// registers after restores and forks (`POST /v1/nodes`).
    public static let maximumNodesPerDevice = 16
    /// The largest `POST /v1/enroll` body the server reads (the route needs no token).
    public static let maximumEnrolmentBytes = 64 * 1024
    /// The largest request body the server reads, in bytes; larger bodies get 413.
    public static let maximumRequestBytes = 8 * 1024 * 1024

    /// Checks the `protocol` member of a message.
    public static func checkVersion(_ object: [String: JSONValue]) throws(ProtocolError) {
        guard case .int(let v)? = object["protocol"] else {
            throw ProtocolError(.malformed, "protocol: expected the protocol version number (this build speaks \(version))")
        }
        guard v == version else {
            throw ProtocolError(.unsupportedVersion, "protocol version \(v) is not supported; this build speaks \(version)")
        }
    }

    static func object(_ json: JSONValue, _ what: String) throws(ProtocolError) -> [String: JSONValue] {
        guard case .object(let o) = json else { throw ProtocolError(.malformed, "\(what): expected a JSON object") }
        return o
    }

    static func revisions(_ json: JSONValue?, limit: Int) throws(ProtocolError) -> [Revision] {
        guard case .array(let items)? = json else { throw ProtocolError(.malformed, "revisions: expected an array") }
        guard items.count <= limit else {
            throw ProtocolError(.tooLarge, "revisions: \(items.count) revisions in one batch; the limit is \(limit)")
        }
        // Decoded on all cores; the first bad revision in batch order is the one reported.
        let decoded = Array(items.indices).parallelMap { i in
            Result { () throws(DecodingProblem) in try Revision(json: items[i], at: "revisions[\(i)]") }
        }
        var result: [Revision] = []
        result.reserveCapacity(items.count)
        for outcome in decoded {
            switch outcome {
            case .success(let revision): result.append(revision)
            case .failure(let problem): throw ProtocolError(.malformed, problem.description)
            }
        }
        return result
    }

    static func knowledge(_ json: JSONValue?, at path: String) throws(ProtocolError) -> VersionVector {
        guard let json else { throw ProtocolError(.malformed, "\(path): missing") }
        do { return try VersionVector(json: json, at: path) } catch { throw ProtocolError(.malformed, error.description) }
    }
}

/// A message or file that this build cannot accept, with a stable machine-readable code.
public struct ProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable error codes, listed in `Protocol/sync-protocol.md`, "Errors".
    public enum Code: String, Sendable {
        case malformed = "malformed"
        case invalidJSON = "invalid_json"
        case unsupportedVersion = "unsupported_version"
        case tooLarge = "too_large"
        case causalGap = "causal_gap"
        case conflictingDuplicate = "conflicting_duplicate"
        case invalidField = "invalid_field"
        case checksumMismatch = "checksum_mismatch"
        case unauthorized = "unauthorized"
        case forbidden = "forbidden"
        case badSignature = "bad_signature"
        case unknownNode = "unknown_node"
        case notFound = "not_found"
        case rateLimited = "rate_limited"
        /// A pushed revision of the pushing node conflicts with the node's chain on the server: the
        /// replica has forked (restored or cloned) and must re-mint (spec 4.5, 13).
        case fork = "fork"
        /// The account's attachment quota would be exceeded (spec 19.6).
        case quotaExceeded = "quota_exceeded"
        /// An uploaded chunk's bytes do not hash to what its manifest lists (spec 19.4).
        case chunkMismatch = "chunk_mismatch"
        /// No stored revision references these attachment bytes: the central node is no file host.
        case unreferenced = "unreferenced"
        /// An upload's offset is not what the central node received of the chunk, or another
        /// request is writing it: ask `attachments/status` again and resume from there.
        case uploadConflict = "upload_conflict"
        /// The central node's shared database could not take the write in time (another instance's
        /// batch held it): 503 with `Retry-After`; the same request succeeds later (spec 20.3).
        case busy = "busy"
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// `{"error": {"code": ..., "message": ...}}`, the body of every 4xx and 5xx response.
    public var json: JSONValue { ["error": ["code": .string(code.rawValue), "message": .string(message)]] }

    public init?(json: JSONValue) {
        guard let error = json["error"], let codeText = error["code"]?.stringValue, let code = Code(rawValue: codeText),
            let message = error["message"]?.stringValue
        else { return nil }
        self.init(code, message)
    }
}

extension JSONValue {
    /// Parses a message body, turning parse failures into a ``ProtocolError``.
    public static func parseMessage(_ bytes: some Collection<UInt8>) throws(ProtocolError) -> JSONValue {
        do { return try JSONValue(parsing: bytes) } catch { throw ProtocolError(.invalidJSON, error.description) }
    }
}
