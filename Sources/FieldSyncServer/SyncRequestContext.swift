import FieldSyncProtocol
import Hummingbird
import NIOCore

/// Per-request state of the central node's routes: where the request came from and, once
/// ``BearerAuthMiddleware`` has run, who sent it.
public struct SyncRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// Set by ``BearerAuthMiddleware`` for every route but health and enrolment.
    public var principal: Principal?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// Bodies are read explicitly with ``SyncProtocol/maximumRequestBytes``.
    public var maxUploadSize: Int { SyncProtocol.maximumRequestBytes }

    /// The peer's IP address, for rate limits and the audit log.
    public var sourceAddress: String { remoteAddress?.ipAddress ?? "unknown" }

    /// The authenticated principal; routes behind the middleware can rely on it.
    func requirePrincipal() throws -> Principal {
        guard let principal else { throw ProtocolError(.unauthorized, "a bearer token is required") }
        return principal
    }

    func requireAdmin() throws -> Principal {
        let principal = try requirePrincipal()
        guard principal.role == .admin else {
            throw ProtocolError(.forbidden, "this needs an admin; \(principal.account) is a \(principal.role.rawValue)")
        }
        return principal
    }
}
