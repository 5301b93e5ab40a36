import CompressNIO
import FieldSyncCore
import FieldSyncProtocol
import Hummingbird
import Logging

/// Turns every error into a JSON error body (`{"error": {"code", "message"}}`) with a fitting status,
/// so clients never have to parse HTML or plain text. Unexpected errors become 500 and are logged.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as ProtocolError {
            return JSONResponse.error(error)
        } catch let error as any HTTPResponseError {
            let code: ProtocolError.Code =
                switch error.status {
                case .contentTooLarge: .tooLarge
                case .notFound: .notFound
                case .unauthorized: .unauthorized
                case .forbidden: .forbidden
                default: .malformed
                }
            let message =
                (error as? HTTPError)?.body
                ?? (error.status == .notFound ? "no such endpoint: \(request.method) \(request.uri.path)" : error.status.reasonPhrase)
            return JSONResponse.make(status: error.status, ProtocolError(code, message).json)
        } catch {
            context.logger.error("internal error", metadata: ["error": "\(error)"])
            return JSONResponse.make(status: .internalServerError, ["error": ["code": "internal", "message": "internal server error"]])
        }
    }
}

/// Building JSON responses from ``JSONValue``s.
enum JSONResponse {
    static func make(status: HTTPResponse.Status = .ok, _ json: JSONValue) -> Response {
        make(status: status, bytes: json.canonicalBytes)
    }

    static func make(status: HTTPResponse.Status = .ok, bytes: [UInt8]) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// A large JSON body, gzip-compressed when the request accepts gzip (pull pages compress several times over,
    /// which is what matters on a satellite or mobile link). zlib's fastest level: most of the gain
    /// for a fraction of the CPU.
    static func make(bytes: [UInt8], compressingFor request: Request) -> Response {
        var plain = make(bytes: bytes)
        plain.headers[.vary] = "Accept-Encoding"
        guard bytes.count >= 1024, acceptsGzip(request) else { return plain }
        var buffer = ByteBuffer(bytes: bytes)
        guard let compressed = try? buffer.compress(with: .gzip(configuration: .init(compressionLevel: 1))) else { return plain }
        return Response(
            status: .ok, headers: [.contentType: "application/json", .contentEncoding: "gzip", .vary: "Accept-Encoding"],
            body: ResponseBody(byteBuffer: compressed))
    }

    /// Whether `Accept-Encoding` lists gzip with a non-zero weight.
    static func acceptsGzip(_ request: Request) -> Bool {
        request.headers[values: .acceptEncoding].flatMap { $0.split(separator: ",") }.contains { item in
            let parts = item.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard parts.first == "gzip" else { return false }
            guard let weight = parts.dropFirst().first(where: { $0.hasPrefix("q=") }) else { return true }
            return (Double(weight.dropFirst(2)) ?? 0) > 0
        }
    }

    static func error(_ error: ProtocolError) -> Response {
        var response = make(status: status(for: error.code), error.json)
        // A shared database's write lock was not free in time: the client retries, as it does any 5xx.
        if error.code == .busy { response.headers[.retryAfter] = "1" }
        return response
    }

    static func status(for code: ProtocolError.Code) -> HTTPResponse.Status {
        switch code {
        case .malformed, .invalidJSON, .unsupportedVersion, .checksumMismatch: .badRequest
        case .tooLarge, .quotaExceeded: .contentTooLarge
        case .causalGap, .conflictingDuplicate, .fork, .uploadConflict: .conflict
        case .invalidField, .badSignature, .unknownNode, .chunkMismatch, .unreferenced: .unprocessableContent
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .notFound: .notFound
        case .rateLimited: .tooManyRequests
        case .busy: .serviceUnavailable
        }
    }
}
