import FieldSyncProtocol
import Hummingbird

/// Requires `Authorization: Bearer TOKEN` of an enrolled, unrevoked device: 401 otherwise.
struct BearerAuthMiddleware<Storage: AccountStorage>: RouterMiddleware {
    let storage: Storage

    func handle(_ request: Request, context: SyncRequestContext, next: (Request, SyncRequestContext) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            throw ProtocolError(.unauthorized, "a bearer token is required: enrol this device with `fieldsync enroll`")
        }
        let token = String(header.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces)
        guard !token.isEmpty, token.count <= 200, let principal = try await storage.principal(tokenHash: Secrets.hash(token)) else {
            throw ProtocolError(.unauthorized, "the token is not valid, or its device or account was revoked")
        }
        var context = context
        context.principal = principal
        return try await next(request, context)
    }
}
