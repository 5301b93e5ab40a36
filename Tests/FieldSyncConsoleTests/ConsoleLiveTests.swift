import FieldSyncConsole
import FieldSyncStore
import FieldSyncTestSupport
import Foundation
import Hummingbird
import Logging
import Testing

/// The console on a real socket (127.0.0.1, port 0), spoken to in raw HTTP so that the Host and
/// Origin headers are exactly what a DNS-rebinding page or another site would send.
@Suite struct ConsoleLiveTests {
    @Test func aForeignHostOrOriginIsRefusedAndTheCookieIsNeeded() async throws {
        let dir = try TemporaryDirectory("console-live")
        let store = try ReplicaStore.create(at: dir.file("replica.sqlite"), name: "Rima", now: 1)
        _ = try Fixtures.addIncident(store, title: "Raid on the market")
        let configuration = ConsoleConfiguration(
            replica: ConsoleReplica(opener: { _ in store }), sessions: ConsoleSessions(loginToken: "live-token"),
            sync: ConsoleSyncJob(runner: nil), base: "/s3cr3t/", newEntryID: { "e" })
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = buildConsoleApplication(configuration, port: 0, logger: Logger(label: "console-live")) { continuation.yield($0) }
        let server = Task { try await app.run() }
        defer { server.cancel() }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())

        func get(_ path: String, host: String, cookie: String? = nil) async throws -> String {
            let cookieLine = cookie.map { "Cookie: \($0)\r\n" } ?? ""
            return try await RawHTTP.request(port: port, "GET \(path) HTTP/1.1\r\nHost: \(host)\r\n\(cookieLine)Connection: close\r\n\r\n")
        }
        // A page on another name that resolves to 127.0.0.1 (DNS rebinding) is refused, even with the token.
        let rebound = try await get("/s3cr3t/login?token=live-token", host: "attacker.example:\(port)")
        #expect(rebound.hasPrefix("HTTP/1.1 421"), "\(rebound.prefix(200))")
        // Refusals outside the console's pages never name its secret prefix.
        #expect(!rebound.contains("s3cr3t"))
        let root = try await get("/", host: "127.0.0.1:\(port)")
        #expect(root.hasPrefix("HTTP/1.1 404") && !root.contains("s3cr3t"), "\(root)")
        #expect(!rebound.contains("Set-Cookie"))
        #expect(try await get("/s3cr3t/incidents", host: "127.0.0.1:\(port + 1)").hasPrefix("HTTP/1.1 421"))
        // Without the cookie: 401, and nothing of the replica.
        let anonymous = try await get("/s3cr3t/incidents", host: "127.0.0.1:\(port)")
        #expect(anonymous.hasPrefix("HTTP/1.1 401") && !anonymous.contains("Raid on the market"))
        let login = try await get("/s3cr3t/login?token=live-token", host: "127.0.0.1:\(port)")
        #expect(login.hasPrefix("HTTP/1.1 303") && login.contains("Location: /s3cr3t/incidents"), "\(login.prefix(300))")
        let cookieLine = try #require(login.split(separator: "\r\n").first { $0.lowercased().hasPrefix("set-cookie:") })
        // The cookie's path is the console's secret prefix: a browser never sends it to another
        // server on 127.0.0.1, whatever its port.
        #expect(cookieLine.contains("HttpOnly") && cookieLine.contains("SameSite=Strict") && cookieLine.contains("Path=/s3cr3t/"))
        let cookie = String(cookieLine.dropFirst("set-cookie: ".count).split(separator: ";")[0])
        // Pages outside the prefix do not exist, with the cookie or not.
        #expect(try await get("/incidents", host: "127.0.0.1:\(port)", cookie: cookie).hasPrefix("HTTP/1.1 404"))
        // A cookie of the same name planted for a narrower path, sent first, does not hide the real one.
        let page = try await get("/s3cr3t/incidents", host: "localhost:\(port)", cookie: "fieldsync_console=planted; \(cookie)")
        #expect(page.hasPrefix("HTTP/1.1 200") && page.contains("Raid on the market"))
        #expect(
            page.contains("href=\"/s3cr3t/static/console.css\"") && page.contains("href=\"/s3cr3t/incidents/new\""),
            "links under the prefix")
        #expect(page.contains("X-Frame-Options: DENY") || page.lowercased().contains("x-frame-options: deny"))
        // A form posted from another site is refused before its body is read, CSRF token or not.
        let form = try await get("/s3cr3t/incidents/new", host: "127.0.0.1:\(port)", cookie: cookie)
        let csrf = try #require(form.range(of: "name=\"_csrf\" value=\"").map { String(form[$0.upperBound...].prefix { $0 != "\"" }) })
        let body = "_csrf=\(csrf)&f.title=Forged"
        let crossSite = try await RawHTTP.request(
            port: port,
            "POST /s3cr3t/incidents HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nOrigin: http://attacker.example\r\nCookie: \(cookie)\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        )
        #expect(crossSite.hasPrefix("HTTP/1.1 403"), "\(crossSite.prefix(200))")
        #expect(try store.records().count == 1, "nothing was written")
    }
}
