import FieldSyncCore
import FieldSyncProtocol
import Foundation
import Hummingbird

/// Routes for admins: accounts, devices and the audit log. Each answers 403 to a documenter.
struct AdminRoutes<Storage: AccountStorage>: Sendable {
    let storage: Storage
    let logAddresses: Bool

    func add(to group: RouterGroup<SyncRequestContext>) {
        group.get("users") { _, context in
            _ = try context.requireAdmin()
            return JSONResponse.make(["protocol": .int(SyncProtocol.version), "users": .array(try await storage.accounts().map(\.json))])
        }
        group.post("users") { request, context in try await addUser(request, context) }
        group.post("users/:name/revoke") { _, context in
            let admin = try context.requireAdmin()
            let name = try context.parameters.require("name")
            guard try await storage.revokeAccount(name, now: Self.now()) else { throw ProtocolError(.notFound, "no user named \(name)") }
            try await audit(admin, context, "revoke-user", "revoked user \(name) and all their devices")
            return JSONResponse.make(["protocol": .int(SyncProtocol.version), "revoked": .string(name)])
        }
        group.get("devices") { _, context in
            _ = try context.requireAdmin()
            return JSONResponse.make(["protocol": .int(SyncProtocol.version), "devices": .array(try await storage.devices().map(\.json))])
        }
        group.post("devices/:node/revoke") { _, context in
            let admin = try context.requireAdmin()
            guard let node = NodeID(try context.parameters.require("node")) else { throw ProtocolError(.malformed, "expected a node id") }
            guard try await storage.revokeDevice(node, now: Self.now()) else {
                throw ProtocolError(.notFound, "no device with node \(node)")
            }
            try await audit(admin, context, "revoke-device", "revoked device \(node)")
            return JSONResponse.make(["protocol": .int(SyncProtocol.version), "revoked": .string(node.rawValue)])
        }
        group.get("audit") { request, context in
            _ = try context.requireAdmin()
            let text = request.uri.queryParameters.get("limit") ?? "100"
            guard let limit = Int(text), (1...10_000).contains(limit) else { throw ProtocolError(.malformed, "limit: expected 1 to 10000") }
            return JSONResponse.make([
                "protocol": .int(SyncProtocol.version), "entries": .array(try await storage.audit(limit: limit).map(\.json)),
            ])
        }
    }

    func addUser(_ request: Request, _ context: SyncRequestContext) async throws -> Response {
        let admin = try context.requireAdmin()
        let add = try AddUserRequest(json: try await JSONBody.read(request))
        let code = Secrets.newEnrolmentCode()
        let expires = Self.now() + Int64(add.expiresHours) * 3_600_000
        try await storage.addAccount(name: add.name, role: add.role, codeHash: Secrets.hash(code), expires: expires, now: Self.now())
        try await audit(admin, context, "add-user", "issued an enrolment code for \(add.name) (\(add.role.rawValue))")
        return JSONResponse.make([
            "protocol": .int(SyncProtocol.version), "user": .string(add.name), "role": .string(add.role.rawValue),
            "code": .string(code), "expires": .int(expires),
        ])
    }

    func audit(_ admin: Principal, _ context: SyncRequestContext, _ action: String, _ detail: String) async throws {
        try await storage.appendAudit(
            AuditEntry(
                time: Self.now(), user: admin.account, device: admin.node.rawValue, action: action, detail: detail,
                address: logAddresses ? context.sourceAddress : nil))
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}
