import FieldSyncConsole
import FieldSyncCore
import FieldSyncProtocol
import FieldSyncStore
import FieldSyncTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Synchronization
import Testing

/// The console's routes in-process: every page and form, bad input (a message on the page and
/// nothing changed in the store), the login exchange, CSRF and escaping.
@Suite struct ConsoleRouterTests {
    let dir: TemporaryDirectory
    let store: ReplicaStore
    static let token = "test-login-token"

    init() throws {
        dir = try TemporaryDirectory("console")
        store = try ReplicaStore.create(at: dir.file("replica.sqlite"), name: "Rima", now: 1)
    }

    /// A signed-in client: runs `body` with a session cookie and the page's CSRF token.
    func withConsole(
        _ store: ReplicaStore? = nil, opener: ConsoleReplica.Opener? = nil, sync: ConsoleSyncRunner? = nil,
        _ body: @Sendable (Client) async throws -> Void
    ) async throws {
        let replica = store ?? self.store
        let configuration = ConsoleConfiguration(
            replica: ConsoleReplica(opener: opener ?? { _ in replica }), sessions: ConsoleSessions(loginToken: Self.token),
            sync: ConsoleSyncJob(runner: sync), newEntryID: { String(UInt64.random(in: 0..<(1 << 48)), radix: 16) })
        // The router test framework sends `Host: localhost` without a port: a console on port 80.
        configuration.port.set(80)
        let app = Application(router: buildConsoleRouter(configuration, logger: Logger(label: "console-test")))
        try await app.test(.router) { client in
            let login = try await client.execute(uri: "/login?token=\(Self.token)", method: .get)
            #expect(login.status == .seeOther)
            let cookie = try #require(login.headers[.setCookie])
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"))
            let session = String(cookie.split(separator: ";")[0])
            var page = try await client.execute(uri: "/incidents/new", method: .get, headers: [.cookie: session])
            if page.status == .seeOther { page = try await client.execute(uri: "/unlock", method: .get, headers: [.cookie: session]) }
            let csrf = try #require(Self.csrf(in: String(buffer: page.body)))
            try await body(Client(client: client, cookie: session, csrf: csrf))
        }
    }

    struct Client: Sendable {
        let client: any TestClientProtocol
        let cookie: String
        let csrf: String

        func get(_ uri: String) async throws -> (status: HTTPResponse.Status, body: String, headers: HTTPFields) {
            let response = try await client.execute(uri: uri, method: .get, headers: [.cookie: cookie])
            return (response.status, String(buffer: response.body), response.headers)
        }

        /// Posts a form with the session's CSRF token unless `csrf` says otherwise.
        func post(_ uri: String, _ fields: [(String, String)], csrf: String? = nil) async throws -> (
            status: HTTPResponse.Status, body: String, location: String?
        ) {
            let body = FormData.encode([("_csrf", csrf ?? self.csrf)] + fields)
            let response = try await client.execute(
                uri: uri, method: .post, headers: [.cookie: cookie, .contentType: "application/x-www-form-urlencoded"],
                body: ByteBuffer(string: body))
            return (response.status, String(buffer: response.body), response.headers[.location])
        }
    }

    static func csrf(in page: String) -> String? {
        guard let range = page.range(of: "name=\"_csrf\" value=\"") else { return nil }
        return String(page[range.upperBound...].prefix(while: { $0 != "\"" }))
    }

    /// Two replicas that edited the same field concurrently: `store` holds the conflict.
    func conflictedRecord() throws -> RecordID {
        let other = try ReplicaStore.create(at: dir.file("other.sqlite"), name: "Omar", now: 1)
        let id = try Fixtures.addIncident(store, title: "Shelling of the bakery", [.set(path: "casualties.killed", value: 12)])
        let ownKey = KeyEntry(node: try store.identity().node, publicKey: try store.publicKey())
        let otherKey = KeyEntry(node: try other.identity().node, publicKey: try other.publicKey())
        _ = try other.receiveVerified(try store.allRevisions(), learning: [ownKey], now: 2)
        try Fixtures.edit(store, id, [.set(path: "casualties.killed", value: 14)])
        try Fixtures.edit(other, id, [.set(path: "casualties.killed", value: 16)])
        _ = try store.receiveVerified(try other.allRevisions(), learning: [otherKey], now: 3)
        #expect(try store.record(id)?.isConflicted(at: "casualties.killed") == true)
        return id
    }

    @Test func theLoginLinkWorksOnceAndEveryPageNeedsTheCookie() async throws {
        let configuration = ConsoleConfiguration(
            replica: ConsoleReplica(opener: { [store] _ in store }), sessions: ConsoleSessions(loginToken: Self.token),
            sync: ConsoleSyncJob(runner: nil), newEntryID: { "e" })
        configuration.port.set(80)
        let app = Application(router: buildConsoleRouter(configuration, logger: Logger(label: "console-test")))
        try await app.test(.router) { client in
            for path in ["/incidents", "/incidents/new", "/conflicts", "/chart", "/sync", "/status", "/sync/progress"] {
                let response = try await client.execute(uri: path, method: .get)
                #expect(response.status == .unauthorized, "\(path)")
                #expect(!String(buffer: response.body).contains("<table"), "\(path) shows nothing without a session")
            }
            let wrong = try await client.execute(uri: "/login?token=guess", method: .get)
            #expect(wrong.status == .unauthorized && wrong.headers[.setCookie] == nil)
            let forged = try await client.execute(uri: "/incidents", method: .get, headers: [.cookie: "fieldsync_console=made-up"])
            #expect(forged.status == .unauthorized)
            let login = try await client.execute(uri: "/login?token=\(Self.token)", method: .get)
            #expect(login.status == .seeOther && login.headers[.location] == "/incidents")
            let again = try await client.execute(uri: "/login?token=\(Self.token)", method: .get)
            #expect(again.status == .unauthorized, "the token is one-time")
            let cookie = String(try #require(login.headers[.setCookie]).split(separator: ";")[0])
            let page = try await client.execute(uri: "/incidents", method: .get, headers: [.cookie: cookie])
            #expect(page.status == .ok)
            #expect(page.headers[HTTPField.Name("Content-Security-Policy")!]?.contains("script-src 'self'") == true)
            #expect(page.headers[HTTPField.Name("X-Frame-Options")!] == "DENY")
        }
    }

    @Test func everyPageRendersWithItsOwnTitle() async throws {
        let id = try conflictedRecord()
        try await withConsole { client in
            var titles: Set<String> = []
            for path in [
                "/incidents", "/incidents/new", "/incidents/\(id.rawValue)", "/incidents/\(id.rawValue)/edit", "/conflicts", "/chart",
                "/sync",
                "/status",
            ] {
                let page = try await client.get(path)
                #expect(page.status == .ok, "\(path): \(page.body.prefix(300))")
                let title = try #require(page.body.range(of: "<title>").map { page.body[$0.upperBound...].prefix { $0 != "<" } })
                titles.insert(String(title))
            }
            #expect(titles.count == 8, "each page has a title of its own: \(titles)")
            let css = try await client.get("/static/console.css")
            #expect(css.status == .ok && css.headers[.contentType]?.hasPrefix("text/css") == true)
            let missing = try await client.get("/incidents/01a234b2-0000-7000-8000-000000000000")
            #expect(missing.status == .notFound)
        }
    }

    @Test func aScriptInATitleRendersAsText() async throws {
        let id = try Fixtures.addIncident(
            store, title: "<script>alert(1)</script>", [.set(path: "location.place", value: "\"><img src=x onerror=alert(2)>")])
        try await withConsole { client in
            for path in ["/incidents", "/incidents/\(id.rawValue)", "/incidents/\(id.rawValue)/edit", "/chart"] {
                let page = try await client.get(path).body
                #expect(!page.contains("<script>alert(1)</script>"), "\(path)")
                #expect(!page.contains("<img src=x"), "\(path)")
            }
            #expect(try await client.get("/incidents").body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        }
    }

    @Test func addingAnIncidentThroughTheFormSignsARevision() async throws {
        try await withConsole { client in
            let blank = try FormScraper(try await client.get("/incidents/new").body, action: "/incidents")
            let fields: [(String, String)] =
                [("_form", blank["_form"] ?? "")] + [
                    ("f.title", "مداهمة في حي الرمل"), ("f.occurred.start", "2025-03-07~"), ("f.location.governorate", "Latakia"),
                    ("f.casualties.killed", "4"), ("violations", "killing"), ("violations", "looting"), ("tags.new", "night, market"),
                    ("n.victims.0.pseudonym", "V-01"), ("n.victims.0.sex", "female"), ("n.victims.0.status", "killed"),
                    ("custom.new.key", "case_file"), ("custom.new.value", "{\"box\": 3}"),
                ]
            let response = try await client.post("/incidents", fields)
            #expect(response.status == .seeOther, "\(response.body.prefix(500))")
            // The same form sent again (a double click, a reload) adds nothing.
            let again = try await client.post("/incidents", fields)
            #expect(again.status == .conflict && again.body.contains("saved already"))
            #expect(try store.records().count == 1)
            let location = try #require(response.location)
            let id = try #require(RecordID(String(location.dropFirst("/incidents/".count).prefix(while: { $0 != "?" }))))
            let state = try #require(try store.record(id))
            #expect(state.value(at: "title") == "مداهمة في حي الرمل")
            #expect(state.value(at: "casualties.killed") == 4)
            #expect(state.elements(of: "violations") == ["killing", "looting"])
            #expect(state.elements(of: "tags") == ["market", "night"])
            #expect(state.value(at: "custom.case_file") == ["box": 3])
            let victims = try #require(state.fields.objectValue?["victims"]?.objectValue)
            #expect(victims.count == 1 && victims.values.first?.objectValue?["pseudonym"] == "V-01")
            let revision = try #require(try store.history(of: id).first?.revision)
            #expect(revision.dot.node == (try store.identity().node))
            #expect(SignatureCheck.isValid(revision, publicKeyBase64: try store.publicKey()))
            let page = try await client.get(location)
            #expect(page.body.contains("dir=\"auto\">مداهمة في حي الرمل</h1>"))
        }
    }

    @Test func badInputIsExplainedBesideItsFieldAndStoresNothing() async throws {
        let before = try Fixtures.canonicalState(store)
        try await withConsole { client in
            let cases: [([(String, String)], String)] = [
                ([("f.title", "   ")], "is required"),
                ([("f.title", "x"), ("f.casualties.killed", "-3")], "non-negative integer"),
                ([("f.title", "x"), ("f.occurred.start", "2025-13-40")], "out of range"),
                ([("f.title", "x"), ("f.location.lat", "91")], "from -90 to 90"),
                ([("f.title", "x"), ("f.status", "published")], "one of draft"),
                ([("f.title", "x"), ("violations", "genocide-denial")], "not a violation type"),
                ([("f.title", "x"), ("n.victims.0.age_range", "old")], "age range"),
                ([("f.title", "x"), ("custom.new.key", "a.b"), ("custom.new.value", "1")], "without dots"),
            ]
            for (fields, message) in cases {
                let response = try await client.post("/incidents", fields)
                #expect(response.status == .unprocessableContent, "\(fields)")
                #expect(response.body.contains(message), "\(fields): \(message)")
                #expect(response.body.contains("Nothing was saved"))
            }
            let forged = try await client.post("/incidents", [("f.title", "Forged")], csrf: "not-the-token")
            #expect(forged.status == .forbidden)
        }
        #expect(try Fixtures.canonicalState(store) == before)
    }

    @Test func anEditWritesOnlyWhatChanged() async throws {
        let id = try Fixtures.addIncident(
            store, title: "Detentions at the checkpoint",
            [
                .set(path: "casualties.missing", value: 3), .set(path: "location.place", value: "Jableh"),
                .set(path: "narrative", value: "\nFirst line\r\nsecond line  "), .set(path: "custom.case_year", value: "2025"),
                .add(path: "tags", element: "night, market"), .set(path: "victims.newton.pseudonym", value: "V-7"),
                .set(path: "location.district", value: "  padded\n"),
            ])
        let before = try #require(try store.record(id))
        try await withConsole { client in
            // The form as a browser sends it back untouched: nothing to write, nothing rewritten.
            let untouched = try FormScraper(
                try await client.get("/incidents/\(id.rawValue)/edit").body, action: "/incidents/\(id.rawValue)")
            let same = try await client.post("/incidents/\(id.rawValue)", untouched.fields.filter { $0.0 != "_csrf" })
            #expect(same.status == .unprocessableContent && same.body.contains("nothing changed"), "\(same.body.prefix(600))")
            var form = untouched
            form["f.casualties.missing"] = "5"
            form["f.location.place"] = ""
            let response = try await client.post("/incidents/\(id.rawValue)", form.fields.filter { $0.0 != "_csrf" })
            #expect(response.status == .seeOther, "\(response.body.prefix(600))")
        }
        let state = try #require(try store.record(id))
        #expect(state.value(at: "casualties.missing") == 5 && state.value(at: "location.place") == nil)
        for path in ["narrative", "custom.case_year", "victims.newton.pseudonym", "location.district", "title"] {
            #expect(state.value(at: path) == before.value(at: path), "\(path) untouched")
        }
        #expect(state.elements(of: "tags") == ["night, market"])
        #expect(IncidentFormEntries.count(state, "victims") == 1, "no entry added twice")
        let last = try #require(try store.history(of: id).last?.revision)
        #expect(Set(last.operations.map(\.path)) == ["casualties.missing", "location.place"])
    }

    @Test func aFormOpenedBeforeASyncNeverOverwritesWhatTheSyncBrought() async throws {
        let id = try Fixtures.addIncident(store, title: "Shelling", [.set(path: "casualties.killed", value: 12)])
        try await withConsole { client in
            var form = try FormScraper(try await client.get("/incidents/\(id.rawValue)/edit").body, action: "/incidents/\(id.rawValue)")
            // Meanwhile a sync (here a direct edit) brings another death toll.
            try Fixtures.edit(store, id, [.set(path: "casualties.killed", value: 16)])
            form["f.narrative"] = "Seen from the roof."
            let narrative = try await client.post("/incidents/\(id.rawValue)", form.fields.filter { $0.0 != "_csrf" })
            #expect(narrative.status == .seeOther, "an untouched stale field is not a change")
            #expect(try store.record(id)?.value(at: "casualties.killed") == 16)
            var stale = try FormScraper(try await client.get("/incidents/\(id.rawValue)/edit").body, action: "/incidents/\(id.rawValue)")
            try Fixtures.edit(store, id, [.set(path: "casualties.killed", value: 17)])
            stale["f.casualties.killed"] = "13"
            let refused = try await client.post("/incidents/\(id.rawValue)", stale.fields.filter { $0.0 != "_csrf" })
            #expect(refused.status == .unprocessableContent && refused.body.contains("changed since you opened this form"))
        }
        #expect(try store.record(id)?.value(at: "casualties.killed") == 17)
    }

    @Test func removingAnEntryOrAddingAFreeFieldNeverOverwritesWhatIsThere() async throws {
        let id = try Fixtures.addIncident(
            store, title: "Raid", [.set(path: "victims.a1.pseudonym", value: "V-1"), .set(path: "custom.box", value: 3)])
        try await withConsole { client in
            var form = try FormScraper(try await client.get("/incidents/\(id.rawValue)/edit").body, action: "/incidents/\(id.rawValue)")
            // A sync edits the victim after the form was shown: removing it now would erase that.
            try Fixtures.edit(store, id, [.set(path: "victims.a1.status", value: "killed")])
            form["remove.victims.a1"] = "1"
            let removal = try await client.post("/incidents/\(id.rawValue)", form.fields.filter { $0.0 != "_csrf" })
            #expect(
                removal.status == .unprocessableContent && removal.body.contains("changed since you opened"), "\(removal.body.prefix(300))")
            var collision = try FormScraper(
                try await client.get("/incidents/\(id.rawValue)/edit").body, action: "/incidents/\(id.rawValue)")
            collision["custom.new.key"] = "box"
            collision["custom.new.value"] = "4"
            let added = try await client.post("/incidents/\(id.rawValue)", collision.fields.filter { $0.0 != "_csrf" })
            #expect(added.status == .unprocessableContent && added.body.contains("exists already"))
        }
        let state = try #require(try store.record(id))
        #expect(state.value(at: "victims.a1.status") == "killed" && state.value(at: "custom.box") == 3)
    }

    @Test func anAdminCannotEndAConflictThroughTheEditForm() async throws {
        let id = try conflictedRecord()
        let before = try Fixtures.canonicalState(store)
        try await withConsole { client in
            var form = try FormScraper(try await client.get("/incidents/\(id.rawValue)/edit").body, action: "/incidents/\(id.rawValue)")
            form["f.casualties.killed"] = "15"
            let response = try await client.post("/incidents/\(id.rawValue)", form.fields.filter { $0.0 != "_csrf" })
            #expect(response.status == .unprocessableContent && response.body.contains("resolve it on the Conflicts page"))
        }
        #expect(try Fixtures.canonicalState(store) == before)
    }

    @Test func aBadEditIsExplainedAndStoresNothing() async throws {
        let id = try Fixtures.addIncident(store, title: "Raid", [.set(path: "victims.a1.pseudonym", value: "V-1")])
        let before = try Fixtures.canonicalState(store)
        try await withConsole { client in
            let form = try FormScraper(try await client.get("/incidents/\(id.rawValue)/edit").body, action: "/incidents/\(id.rawValue)")
            for (name, value, message) in [
                ("f.title", "", "cannot be cleared"), ("e.victims.a1.age_range", "ancient", "age range"),
                ("f.location.country", "Syria", "ISO 3166-1"),
            ] {
                var bad = form
                bad[name] = value
                let response = try await client.post("/incidents/\(id.rawValue)", bad.fields.filter { $0.0 != "_csrf" })
                #expect(
                    response.status == .unprocessableContent && response.body.contains(message), "\(name): \(response.body.prefix(300))")
            }
            let garbled = try await client.client.execute(
                uri: "/incidents/\(id.rawValue)", method: .post,
                headers: [.cookie: client.cookie, .contentType: "application/x-www-form-urlencoded"],
                body: ByteBuffer(string: "_csrf=\(client.csrf)&f.title=%ZZ"))
            #expect(garbled.status == .badRequest)
        }
        #expect(try Fixtures.canonicalState(store) == before)
    }

    @Test func anAdminResolvesWithANoteAsResolveWrites() async throws {
        let id = try conflictedRecord()
        try await withConsole { client in
            let page = try await client.get("/conflicts").body
            #expect(page.contains("Base value: <span dir=\"auto\">12</span>"), "the base value is shown")
            let candidates = try #require(try store.record(id)?.candidates(at: "casualties.killed"))
            for candidate in candidates { #expect(page.contains(candidate.dot.description)) }
            let shown = candidates.map(\.dot.description).joined(separator: ",")
            let deleted = try #require(try store.record(id)).candidates(at: "deleted").map(\.dot.description).joined(separator: ",")
            let withoutNote = try await client.post(
                "/conflicts/\(id.rawValue)",
                [("shown.deleted", deleted), ("shown.casualties.killed", shown), ("pick.casualties.killed", candidates[0].dot.description)])
            #expect(withoutNote.status == .unprocessableContent && withoutNote.body.contains("a note is required"))
            let stale = try await client.post(
                "/conflicts/\(id.rawValue)",
                [
                    ("shown.deleted", deleted), ("shown.casualties.killed", candidates[0].dot.description),
                    ("pick.casualties.killed", "new"), ("value.casualties.killed", "15"), ("note", "n"),
                ])
            #expect(stale.status == .conflict, "candidates other than those shown")
            let bad = try await client.post(
                "/conflicts/\(id.rawValue)",
                [
                    ("shown.deleted", deleted), ("shown.casualties.killed", shown), ("pick.casualties.killed", "new"),
                    ("value.casualties.killed", "many"), ("note", "n"),
                ])
            #expect(bad.status == .unprocessableContent && bad.body.contains("non-negative integer"))
            #expect(try store.record(id)?.isConflicted == true, "nothing written by the refused forms")
            let done = try await client.post(
                "/conflicts/\(id.rawValue)",
                [
                    ("shown.deleted", deleted), ("shown.casualties.killed", shown), ("pick.casualties.killed", "new"),
                    ("value.casualties.killed", "15"), ("note", "Hospital list confirms 15"),
                ])
            #expect(done.status == .ok && done.body.contains("Resolved casualties.killed"), "\(done.body.prefix(400))")
        }
        let state = try #require(try store.record(id))
        #expect(!state.isConflicted && state.value(at: "casualties.killed") == 15)
        let resolution = try #require(try store.history(of: id).last?.revision)
        #expect(resolution.note == "Hospital list confirms 15")
        #expect(resolution.dot.node == (try store.identity().node))
        #expect(SignatureCheck.isValid(resolution, publicKeyBase64: try store.publicKey()))
    }

    @Test func anEnrolledDocumenterSeesConflictsReadOnly() async throws {
        let id = try conflictedRecord()
        try store.saveEnrolment(Enrolment(server: "http://127.0.0.1:9", token: "t", user: "rima", role: .documenter), now: 4)
        let before = try Fixtures.canonicalState(store)
        try await withConsole { client in
            let page = try await client.get("/conflicts").body
            #expect(page.contains("an admin decides"))
            #expect(!page.contains("name=\"pick."), "no choice to make")
            let candidates = try #require(try store.record(id)?.candidates(at: "casualties.killed"))
            let response = try await client.post(
                "/conflicts/\(id.rawValue)",
                [
                    ("shown.casualties.killed", candidates.map(\.dot.description).joined(separator: ",")),
                    ("pick.casualties.killed", candidates[0].dot.description), ("note", "I decide"),
                ])
            #expect(response.status == .forbidden)
        }
        #expect(try Fixtures.canonicalState(store) == before)
    }

    @Test func imagesShowInlineAndOtherFilesDownloadAsBytes() async throws {
        let id = try Fixtures.addIncident(store, title: "Burned shops")
        let bytes = Fixtures.randomBytes(300_000, seed: 7)
        let manifest = try Fixtures.attach(store, id, bytes: bytes, in: dir.path)
        let link = "/incidents/\(id.rawValue)/attachments/\(manifest.sha256)"
        let stranger = String(repeating: "ab", count: 32)
        try await withConsole { client in
            #expect(try await client.get("/incidents/\(id.rawValue)").body.contains("<img class=\"attachment\" src=\"\(link)\""))
            let image = try await client.client.execute(uri: link, method: .get, headers: [.cookie: client.cookie])
            #expect(image.status == .ok && image.headers[.contentType] == "image/jpeg")
            #expect(Array(image.body.readableBytesView) == bytes, "the bytes exactly")
            #expect(try await client.get("/incidents/\(id.rawValue)/attachments/\(stranger)").status == .notFound)
        }
        // A type that could carry script is never served as itself, and a name cannot break the header.
        try Fixtures.edit(
            store, id,
            [
                .set(path: "attachments.\(manifest.sha256).media_type", value: "image/svg+xml"),
                .set(path: "attachments.\(manifest.sha256).name", value: "evil\"; filename=x.html\r\nSet-Cookie: a=b.svg"),
            ])
        try await withConsole { client in
            let page = try await client.get("/incidents/\(id.rawValue)").body
            #expect(!page.contains("<img class=\"attachment\""), "an SVG is a download, not an image")
            let file = try await client.client.execute(uri: link, method: .get, headers: [.cookie: client.cookie])
            #expect(file.headers[.contentType] == "application/octet-stream")
            let disposition = try #require(file.headers[.contentDisposition])
            #expect(disposition.hasPrefix("attachment; filename=\"") && disposition.filter { $0 == "\"" }.count == 2, "\(disposition)")
            #expect(file.headers[.setCookie] == nil)
        }
    }

    @Test func theTimelineChartCountsIncidentsByDayAndGovernorate() async throws {
        for (day, governorate) in [("2025-03-07", "Latakia"), ("2025-03-07~", "Tartus"), ("2025-03-09", "Latakia"), ("2025-03", "Hama")] {
            _ = try Fixtures.addIncident(
                store, title: "Incident \(day)",
                [.set(path: "occurred.start", value: .string(day)), .set(path: "location.governorate", value: .string(governorate))])
        }
        try await withConsole { client in
            let page = try await client.get("/chart").body
            #expect(page.contains("<svg role=\"img\""))
            #expect(page.contains("3 incidents from 2025-03-07 to 2025-03-09"))
            #expect(page.contains("2025-03-07 · Latakia: 1") && page.contains("2025-03-07 · Tartus: 1"))
            #expect(page.contains("1 incident without a start day"))
        }
    }

    @Test func searchAndFiltersNarrowTheList() async throws {
        _ = try Fixtures.addIncident(
            store, title: "Looting of shops",
            [
                .set(path: "location.governorate", value: "Latakia"), .add(path: "violations", element: "looting"),
                .set(path: "occurred.start", value: "2025-03-07"),
            ])
        _ = try Fixtures.addIncident(
            store, title: "Arrests",
            [.set(path: "location.governorate", value: "Tartus"), .set(path: "narrative", value: "Men taken from the souk")])
        try await withConsole { client in
            #expect(try await client.get("/incidents").body.contains("2 of 2 incidents"))
            let search = try await client.get("/incidents?q=SOUK").body
            #expect(search.contains("1 of 2") && search.contains("Arrests") && !search.contains("Looting of shops</a>"))
            let filtered = try await client.get("/incidents?governorate=Latakia&violation=looting&from=2025-03-01&to=2025-03-31").body
            #expect(filtered.contains("1 of 2") && filtered.contains("Looting of shops"))
            #expect(try await client.get("/incidents?conflicted=1").body.contains("No incidents match"))
        }
    }

    @Test func theSyncButtonRunsTheSyncAndShowsItsSummary() async throws {
        try store.saveEnrolment(Enrolment(server: "http://127.0.0.1:9", token: "t", user: "rima", role: .documenter), now: 4)
        let runs = Counter()
        let runner: ConsoleSyncRunner = { _, progress in
            runs.increment()
            progress(ConsoleSyncProgress(text: "pushed 3 revisions…"))
            return ["pushed 3, pulled 0, new conflicts 0, 0.1 s"]
        }
        try await withConsole(sync: runner) { client in
            let started = try await client.post("/sync", [])
            #expect(started.status == .seeOther)
            var progress = ""
            for _ in 0..<200 {
                progress = try await client.get("/sync/progress").body
                if progress.contains("\"running\":false") { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(progress.contains("\"running\":false") && progress.contains("\"failed\":false"))
            let page = try await client.get("/sync").body
            #expect(page.contains("pushed 3, pulled 0, new conflicts 0"))
            #expect(try await client.post("/sync", [], csrf: "stale").status == .forbidden)
        }
        #expect(runs.value == 1)
    }

    @Test func aLockedReplicaAsksForItsPassphraseInThePage() async throws {
        let unlocked = Counter()
        let opener: ConsoleReplica.Opener = { [store] passphrase in
            guard let passphrase else { return nil }
            guard passphrase == "correct horse" else { throw StoreError(.wrongKey, "wrong passphrase") }
            unlocked.increment()
            return store
        }
        try await withConsole(opener: opener) { client in
            let locked = try await client.get("/incidents")
            #expect(locked.status == .seeOther && locked.headers[.location] == "/unlock")
            let wrong = try await client.post("/unlock", [("passphrase", "guess")])
            #expect(wrong.status == .unauthorized && wrong.body.contains("wrong passphrase"))
            #expect(try await client.get("/incidents").status == .seeOther)
            let right = try await client.post("/unlock", [("passphrase", "correct horse")])
            #expect(right.status == .seeOther && right.location == "/incidents")
            #expect(try await client.get("/incidents").status == .ok)
        }
        #expect(unlocked.value == 1)
    }
}

enum IncidentFormEntries {
    static func count(_ state: RecordState, _ collection: String) -> Int { state.fields.objectValue?[collection]?.objectValue?.count ?? 0 }
}

/// A count shared with a `@Sendable` closure.
final class Counter: Sendable {
    let count = Mutex(0)
    var value: Int { count.withLock { $0 } }
    func increment() { count.withLock { $0 += 1 } }
}
