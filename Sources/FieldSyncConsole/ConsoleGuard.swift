import FieldSyncStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Synchronization

/// Runs before every console route: refuses a Host header other than the loopback address (DNS
/// rebinding), requires the session cookie everywhere but on the login link and the static files,
/// and puts the security headers on every response, errors included. Errors become pages.
struct ConsoleGuard: RouterMiddleware {
    let sessions: ConsoleSessions
    let port: ConsolePort
    let base: String
    let logger: Logger

    static let cookieName = "fieldsync_console"

    /// A strict policy: nothing from elsewhere, no inline script, no inline style, no framing.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    func handle(_ request: Request, context: ConsoleRequestContext, next: (Request, ConsoleRequestContext) async throws -> Response)
        async throws -> Response
    {
        // Before anything names the base path: a rebound Host or a path outside it gets a bare
        // answer, never a page whose links would tell the secret prefix.
        guard port.allows(host: request.head.authority) else {
            return Self.bare(.misdirectedRequest, "this console answers only at 127.0.0.1 and its own port")
        }
        guard request.uri.path.hasPrefix(base) else { return Self.bare(.notFound, "no such page") }
        return try await ConsolePage.$base.withValue(base) { try await placedHandle(request, context: context, next: next) }
    }

    /// A plain-text answer with the security headers, outside the console's pages.
    static func bare(_ status: HTTPResponse.Status, _ message: String) -> Response {
        var response = Response(
            status: status, headers: [.contentType: "text/plain; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: message + "\n")))
        secure(&response)
        return response
    }

    static func secure(_ response: inout Response) {
        response.headers[.contentSecurityPolicy] = contentSecurityPolicy
        response.headers[.xFrameOptions] = "DENY"
        response.headers[.xContentTypeOptions] = "nosniff"
        // Not no-referrer: under it a browser sends `Origin: null` with every form, and forms are checked by origin.
        response.headers[.referrerPolicy] = "same-origin"
        response.headers[.cacheControl] = "no-store"
    }

    func placedHandle(_ request: Request, context: ConsoleRequestContext, next: (Request, ConsoleRequestContext) async throws -> Response)
        async throws -> Response
    {
        var response: Response
        do {
            response = try await guarded(request, context: context, next: next)
        } catch let error as ConsoleError {
            response = ConsolePage.errorResponse(error, session: context.session)
        } catch is ReplicaLocked {
            response = ConsolePage.redirect(to: "/unlock")
        } catch let error as HTTPError {
            response = ConsolePage.errorResponse(ConsoleError(error.status, error.body ?? "\(error.status)"), session: nil)
        } catch {
            // Never the request itself in the log: its cookie is a credential.
            logger.error("console: \(request.method) \(request.uri.path) failed: \(error)")
            response = ConsolePage.errorResponse(ConsoleError(.internalServerError, "\(error)"), session: context.session)
        }
        Self.secure(&response)
        return response
    }

    func guarded(_ request: Request, context: ConsoleRequestContext, next: (Request, ConsoleRequestContext) async throws -> Response)
        async throws -> Response
    {
        let path = "/" + request.uri.path.dropFirst(base.count)
        if path == "/login" || path.hasPrefix("/static/") || path == "/favicon.ico" { return try await next(request, context) }
        guard let (id, csrf) = Self.sessionIDs(request).lazy.compactMap({ id in sessions.csrfToken(session: id).map { (id, $0) } }).first
        else {
            throw ConsoleError(.unauthorized, "not signed in: open the link `fieldsync console` printed when it started")
        }
        var context = context
        context.session = (id, csrf)
        if request.method == .post {
            // A form from any other origin is refused before its body is read.
            if let origin = request.headers[.origin], !port.allows(origin: origin) {
                throw ConsoleError(.forbidden, "a form from another site was refused")
            }
        }
        return try await next(request, context)
    }

    /// Every value the request's cookies give the console's name: one set by someone else for a
    /// narrower path comes first, and must not hide the real one.
    static func sessionIDs(_ request: Request) -> [String] {
        var ids: [String] = []
        for header in request.headers[values: .cookie] {
            for part in header.split(separator: ";") {
                let pair = part.trimmingCharacters(in: .whitespaces)
                if pair.hasPrefix(cookieName + "=") { ids.append(String(pair.dropFirst(cookieName.count + 1))) }
            }
        }
        return ids
    }
}

/// The port the console listens on, known once it is bound; the Host and Origin headers it accepts.
public final class ConsolePort: Sendable {
    let port = Mutex(0)
    public init() {}
    public var value: Int { port.withLock { $0 } }
    public func set(_ value: Int) { port.withLock { $0 = value } }

    static let hosts: Set<String> = ["127.0.0.1", "localhost"]

    func allows(host header: String?) -> Bool {
        guard let header else { return false }
        let parts = header.lowercased().split(separator: ":", maxSplits: 1).map(String.init)
        guard let name = parts.first, Self.hosts.contains(name) else { return false }
        // A browser leaves out the port when it is HTTP's default.
        return parts.count == 2 ? Int(parts[1]) == value : value == 80
    }

    func allows(origin: String) -> Bool {
        guard origin.lowercased().hasPrefix("http://") else { return false }
        return allows(host: String(origin.dropFirst("http://".count)))
    }
}

extension HTTPField.Name {
    static let contentSecurityPolicy = HTTPField.Name("Content-Security-Policy")!
    static let xFrameOptions = HTTPField.Name("X-Frame-Options")!
    static let xContentTypeOptions = HTTPField.Name("X-Content-Type-Options")!
    static let referrerPolicy = HTTPField.Name("Referrer-Policy")!
}
