import FieldSyncProtocol
import Foundation
import Hummingbird

/// Requires `Authorization: Bearer TOKEN` of an enrolled, unrevoked device: 401 otherwise.
struct BearerAuthMiddleware<Storage: AccountStorage>: RouterMiddleware {
    let storage: Storage

    func handle(_ request: Request, context: SyncRequestContext, next: (Request, SyncRequestContext) async throws -> Response) async throws
        -> Response
    {
        guard let token = Self.token(request) else {
            throw ProtocolError(.unauthorized, "a bearer token is required: enrol this device with `fieldsync enroll`")
        }
        guard !token.isEmpty, token.count <= 200, let principal = try await storage.principal(tokenHash: Secrets.hash(token)) else {
            throw ProtocolError(.unauthorized, "the token is not valid, or its device or account was revoked")
        }
        var context = context
        context.principal = principal
        return try await next(request, context)
    }

    /// The token of an `Authorization: Bearer TOKEN` header (the scheme name is case-insensitive).
    static func token(_ request: Request) -> String? {
        guard let header = request.headers[.authorization], header.count > 7, header.prefix(7).lowercased() == "bearer " else { return nil }
        let token = header.dropFirst(7).trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }
}
