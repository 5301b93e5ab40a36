import FieldSyncTestSupport
import Foundation
import Testing

/// `fieldsync console` as a user runs it: the built binary, its first line, and an encrypted
/// replica that the page unlocks with the real key file.
@Suite struct ConsoleCommandTests {
    /// A running console: its URL (with the login token) and the process.
    final class Console: @unchecked Sendable {
        // Touched only by start and stop.
        let process: Process
        let url: URL
        init(process: Process, url: URL) {
            self.process = process
            self.url = url
        }

        static func start(_ binary: FieldSyncBinary, store: String, extra: [String] = []) async throws -> Console {
            let process = Process()
            process.executableURL = binary.url
            process.arguments = ["console", "--store", store, "--no-open"] + extra
            var environment = ProcessInfo.processInfo.environment
            environment["FIELDSYNC_STORE"] = nil
            environment["FIELDSYNC_PASSPHRASE_FILE"] = nil
            process.environment = environment
            let output = Pipe()
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            let line = await DedicatedThread.run { () -> String in
                var bytes: [UInt8] = []
                while let byte = try? output.fileHandleForReading.read(upToCount: 1), let first = byte.first, first != 0x0A {
                    bytes.append(first)
                }
                return String(decoding: bytes, as: UTF8.self)
            }
            guard line.hasPrefix("fieldsync console: "), let url = URL(string: String(line.dropFirst("fieldsync console: ".count))) else {
                process.terminate()
                throw CocoaError(.fileReadCorruptFile, userInfo: [NSLocalizedDescriptionKey: "first line: \(line)"])
            }
            return Console(process: process, url: url)
        }

        var port: Int { url.port! }
        var base: String { url.path.replacingOccurrences(of: "login", with: "") }

        func get(_ path: String, cookie: String? = nil) async throws -> String {
            let cookieLine = cookie.map { "Cookie: \($0)\r\n" } ?? ""
            return try await RawHTTP.request(
                port: port, "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\(cookieLine)Connection: close\r\n\r\n")
        }

        func post(_ path: String, _ body: String, cookie: String) async throws -> String {
            try await RawHTTP.request(
                port: port,
                "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nCookie: \(cookie)\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
            )
        }

        func stop() async -> Int32 {
            process.terminate()
            await DedicatedThread.run { self.process.waitUntilExit() }
            return process.terminationStatus
        }
    }

    static func csrf(_ page: String) -> String? {
        page.range(of: "name=\"_csrf\" value=\"").map { String(page[$0.upperBound...].prefix { $0 != "\"" }) }
    }

    @Test func anEncryptedReplicaIsUnlockedInThePageAndTheFirstLineIsTheURL() async throws {
        let dir = try TemporaryDirectory("console-cli")
        defer { dir.remove() }
        let binary = try FieldSyncBinary()
        let store = dir.file("replica.sqlite")
        let passphrase = dir.file("passphrase")
        try "correct horse battery staple\n".write(toFile: passphrase, atomically: true, encoding: .utf8)
        #expect(try await binary.run(["init", "--name", "Rima", "--passphrase-file", passphrase], store: store).status == 0)
        #expect(try await binary.run(["add", "--title", "Raid on the market", "--passphrase-file", passphrase], store: store).status == 0)
        #expect(try await binary.run(["console", "--port", "70000"], store: store).status == 2, "a bad port is a usage error")
        #expect(try await binary.run(["console", "--no-open"], store: dir.file("missing.sqlite")).status == 1)

        let console = try await Console.start(binary, store: store)
        #expect(console.url.host == "127.0.0.1" && console.url.path.hasSuffix("/login") && console.base.count > 10, "\(console.url)")
        let login = try await console.get(console.url.path + "?" + (console.url.query ?? ""))
        #expect(login.hasPrefix("HTTP/1.1 303"))
        let cookieLine = try #require(login.split(separator: "\r\n").first { $0.lowercased().hasPrefix("set-cookie:") })
        let cookie = String(cookieLine.dropFirst("set-cookie: ".count).split(separator: ";")[0])
        // No agent and no passphrase file: the page asks.
        let locked = try await console.get(console.base + "incidents", cookie: cookie)
        #expect(locked.hasPrefix("HTTP/1.1 303") && locked.contains("Location: \(console.base)unlock"), "\(locked.prefix(300))")
        let form = try await console.get(console.base + "unlock", cookie: cookie)
        let csrf = try #require(Self.csrf(form))
        let wrong = try await console.post(console.base + "unlock", "_csrf=\(csrf)&passphrase=guess", cookie: cookie)
        #expect(wrong.hasPrefix("HTTP/1.1 401") && !wrong.contains("Raid on the market"))
        let right = try await console.post(console.base + "unlock", "_csrf=\(csrf)&passphrase=correct+horse+battery+staple", cookie: cookie)
        #expect(right.hasPrefix("HTTP/1.1 303"), "\(right.prefix(300))")
        let page = try await console.get(console.base + "incidents", cookie: cookie)
        #expect(page.hasPrefix("HTTP/1.1 200") && page.contains("Raid on the market"))
        #expect(try await console.get(console.base + "status", cookie: cookie).contains("passphrase (encrypted)"))
        #expect(await console.stop() == 0, "SIGTERM stops it cleanly")

        // With a passphrase file it opens at once.
        let opened = try await Console.start(binary, store: store, extra: ["--passphrase-file", passphrase])
        let again = try await opened.get(opened.url.path + "?" + (opened.url.query ?? ""))
        let second = String(
            try #require(again.split(separator: "\r\n").first { $0.lowercased().hasPrefix("set-cookie:") }).dropFirst("set-cookie: ".count)
                .split(separator: ";")[0])
        #expect(try await opened.get(opened.base + "incidents", cookie: second).contains("Raid on the market"))
        #expect(await opened.stop() == 0)
    }
}
