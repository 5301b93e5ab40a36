import AsyncHTTPClient
import FieldSyncCore
import FieldSyncProtocol
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// The sync protocol over HTTP(S) with AsyncHTTPClient. Call ``shutdown()`` when done.
public final class HTTPSyncTransport: SyncTransport {
    public let baseURL: String
    let client: HTTPClient
    let timeout: TimeAmount
    let node: NodeID?
    let token: String?
    private let received = Mutex(0)

    /// Response body bytes this transport received on the wire so far (compressed size for a gzip
    /// response, as its `Content-Length` says).
    public var bytesReceived: Int { received.withLock { $0 } }

    /// The most bytes of a response the client reads.
    static let maximumResponseBytes = 256 * 1024 * 1024

    /// - Parameter trustedCertificatesPEM: over HTTPS, the only certificates trusted as roots, in
    ///   place of the system's: an organisation's CA (`--ca-cert`), or the server certificate pinned
    ///   at enrolment. So the very connection that carries the token is verified against what the
    ///   replica enrolled with, and a certificate any public CA issued for the host is refused.
    ///   Empty: the system's roots (only for requests that carry no secret, or plain HTTP).
    public init(
        baseURL: String, node: NodeID? = nil, token: String? = nil, trustedCertificatesPEM: [String] = [],
        timeout: TimeAmount = .seconds(60)
    ) throws {
        guard let url = URL(string: baseURL), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw TransportConfigurationError("\(baseURL) is not an http:// or https:// URL")
        }
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(10), read: timeout)
        // Pull pages come gzip-compressed when asked; the limit bounds what a hostile or broken
        // server could make the client inflate.
        configuration.decompression = .enabled(limit: .size(Self.maximumResponseBytes))
        // The sync driver retries with its own visible backoff (`--retries`); a refused connection
        // should reach it at once rather than after AsyncHTTPClient's silent retries.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.tlsConfiguration = try Self.tlsConfiguration(trusting: trustedCertificatesPEM)
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.timeout = timeout
        self.node = node
        self.token = token
    }

    /// The TLS configuration that trusts exactly `trustedCertificatesPEM` as roots; nil (the
    /// system's roots) when it is empty.
    public static func tlsConfiguration(trusting trustedCertificatesPEM: [String]) throws -> TLSConfiguration? {
        guard !trustedCertificatesPEM.isEmpty else { return nil }
        var tls = TLSConfiguration.makeClientConfiguration()
        var certificates: [NIOSSLCertificate] = []
        for pem in trustedCertificatesPEM {
            do { certificates += try NIOSSLCertificate.fromPEMBytes(Array(pem.utf8)) } catch {
                throw TransportConfigurationError("a trusted certificate is not valid PEM: \(error)")
            }
        }
        tls.trustRoots = .certificates(certificates)
        tls.additionalTrustRoots = []
        return tls
    }

    public func shutdown() async {
        try? await client.shutdown()
    }

    public func knowledge(probing dot: Dot?) async throws -> KnowledgeResponse {
        let path = dot.map { "/v1/knowledge?node=\($0.node.rawValue)&counter=\($0.counter)" } ?? "/v1/knowledge"
        let json = try await send(method: .GET, path: path, body: nil)
        do { return try KnowledgeResponse(json: json) } catch { throw SyncError.badResponse(error.description) }
    }

    public func push(node: NodeID, revisionTexts: [String]) async throws -> PushResponse {
        let json = try await send(method: .POST, path: "/v1/push", body: PushBody.bytes(node: node, revisionTexts: revisionTexts))
        do { return try PushResponse(json: json) } catch { throw SyncError.badResponse(error.description) }
    }

    public func push(node: NodeID, revisionTexts: [String], sequence: PushSequence) async throws -> PushResponse {
        let body = PushBody.bytes(node: node, revisionTexts: revisionTexts, sequence: sequence)
        let json = try await send(method: .POST, path: "/v1/push", body: body)
        do { return try PushResponse(json: json) } catch { throw SyncError.badResponse(error.description) }
    }

    /// AsyncHTTPClient opens a second connection for a second request in flight.
    public var pipelinesPushes: Bool { true }

    public func pull(_ request: PullRequest) async throws -> PullResponse {
        let json = try await send(method: .POST, path: "/v1/pull", body: request.json.canonicalBytes)
        do { return try PullResponse(json: json) } catch { throw SyncError.badResponse(error.description) }
    }

    public func keys() async throws -> KeyDirectory {
        guard let answer = try await keys(unlessTagged: nil) else { throw SyncError.badResponse("304 from /v1/keys without If-None-Match") }
        return answer.directory
    }

    public func keys(unlessTagged known: String?) async throws -> (directory: KeyDirectory, tag: String?)? {
        var headers: [(String, String)] = []
        if let known { headers.append(("If-None-Match", known)) }
        let (status, json, tag) = try await exchange(method: .GET, path: "/v1/keys", body: nil, headers: headers)
        if status == 304 { return nil }
        guard let json else { throw SyncError.badResponse("the body of /v1/keys is not JSON") }
        do { return (try KeyDirectory(json: json), tag) } catch { throw SyncError.badResponse(error.description) }
    }

    public func registerNode(_ node: NodeID, nonce: String?) async throws {
        var body: [String: JSONValue] = ["protocol": .int(SyncProtocol.version), "node": .string(node.rawValue)]
        if let nonce { body["nonce"] = .string(nonce) }
        _ = try await send(method: .POST, path: "/v1/nodes", body: JSONValue.object(body).canonicalBytes)
    }

    /// `GET /v1/health`: the central node's signing key (base64), when it names one.
    public func serverKey() async throws -> String? {
        let json = try await send(method: .GET, path: "/v1/health", body: nil)
        return json["server_key"]?.stringValue.flatMap { SignatureCheck.isPublicKey($0) ? $0 : nil }
    }

    public func enrol(_ request: EnrolRequest) async throws -> EnrolResponse {
        let json = try await send(method: .POST, path: "/v1/enroll", body: request.json.canonicalBytes)
        do { return try EnrolResponse(json: json) } catch { throw SyncError.badResponse(error.description) }
    }

    /// Sends a request and returns the JSON answer; 4xx and 5xx become ``SyncError``s.
    public func send(method: HTTPMethod, path: String, body: [UInt8]?) async throws -> JSONValue {
        let (_, json, _) = try await exchange(method: method, path: path, body: body, headers: [])
        guard let json else { throw SyncError.badResponse("the body of \(path) is not JSON") }
        return json
    }

    /// One request: the status (2xx; 304 only when asked with If-None-Match), the JSON body (nil for
    /// a 304) and the response's entity tag. 4xx and 5xx become ``SyncError``s.
    func exchange(method: HTTPMethod, path: String, body: [UInt8]?, headers extra: [(String, String)]) async throws -> (
        Int, JSONValue?, String?
    ) {
        let (status, bytes, tag) = try await rawExchange(
            method: method, path: path, body: body.map { ByteBuffer(bytes: $0) }, contentType: "application/json", headers: extra)
        if status == 304 { return (status, nil, tag) }
        guard let json = try? JSONValue(parsing: bytes.readableBytesView) else {
            throw SyncError.badResponse("the body of \(path) is not JSON")
        }
        return (status, json, tag)
    }

    /// One request with any body: the status (2xx; 304 only when asked with If-None-Match), the
    /// body bytes and the entity tag. 4xx and 5xx become ``SyncError``s (their JSON error body read).
    func rawExchange(
        method: HTTPMethod, path: String, body: ByteBuffer?, contentType: String, headers extra: [(String, String)],
        accept: String = "application/json", limit: Int = maximumResponseBytes
    ) async throws -> (Int, ByteBuffer, String?) {
        var request = HTTPClientRequest(url: baseURL + path)
        for (name, value) in extra { request.headers.add(name: name, value: value) }
        request.method = method
        request.headers.add(name: "Accept", value: accept)
        request.headers.add(name: "Accept-Encoding", value: "gzip")
        if let node { request.headers.add(name: "FieldSync-Node", value: node.rawValue) }
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(body)
        }
        let status: Int
        let bytes: ByteBuffer
        let tag: String?
        do {
            let response = try await client.execute(request, timeout: timeout)
            status = Int(response.status.code)
            tag = response.headers.first(name: "ETag")
            bytes = try await response.body.collect(upTo: limit)
            let wire =
                response.headers.first(name: "Content-Encoding") == nil
                ? nil : response.headers.first(name: "Content-Length").flatMap { Int($0) }
            received.withLock { $0 += wire ?? bytes.readableBytes }
        } catch is NIOTooManyBytesError {
            // Not transient: the same answer would be too large again.
            throw SyncError.badResponse("the answer to \(path) is larger than \(limit) bytes")
        } catch  where "\(error)".contains("DecompressionError") {
            throw SyncError.badResponse("the compressed answer to \(path) is corrupt or inflates beyond \(limit) bytes")
        } catch {
            throw SyncError.transport("cannot reach \(baseURL): \(Self.describe(error))")
        }
        switch status {
        case 304 where extra.contains(where: { $0.0 == "If-None-Match" }):
            return (status, bytes, tag)
        case 200..<300:
            return (status, bytes, tag)
        case 400..<500:
            let json = try? JSONValue(parsing: bytes.readableBytesView)
            let error = json.flatMap(ProtocolError.init(json:)) ?? ProtocolError(.malformed, "HTTP \(status) from \(path)")
            throw SyncError.rejected(status: status, error: error)
        default:
            let json = try? JSONValue(parsing: bytes.readableBytesView)
            let message = json.flatMap(ProtocolError.init(json:))?.message ?? "HTTP \(status) from \(path)"
            throw SyncError.server(status: status, message: message)
        }
    }

    static func describe(_ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("connectionRefused") || text.contains("Connection refused") { return "connection refused" }
        if text.contains("connectTimeout") { return "connection timed out" }
        if text.contains("remoteConnectionClosed") { return "the connection was closed by the server" }
        if text.contains("readTimeout") || text.contains("deadlineExceeded") { return "the server did not answer in time" }
        if text.contains("CERTIFICATE_VERIFY_FAILED") || text.contains("certificate verify failed") {
            return
                "its TLS certificate does not chain to the certificate pinned at enrolment or to the CA given with --ca-cert (the system's roots are not trusted for the token)"
        }
        return text.count > 200 ? String(text.prefix(200)) + "…" : text
    }
}

/// A server address or client setting that cannot be used.
public struct TransportConfigurationError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
