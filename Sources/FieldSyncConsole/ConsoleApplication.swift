import FieldSyncBlobs
import FieldSyncCore
import FieldSyncStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// The replica the console works on: opened at start when no passphrase is needed (a plaintext
/// replica, a running unlock agent, a passphrase file), else when the page's unlock form gives one.
public final class ConsoleReplica: Sendable {
    /// Opens the replica; with nil, without asking anyone (nil back: a passphrase is needed).
    public typealias Opener = @Sendable (_ passphrase: String?) throws -> ReplicaStore?

    let opener: Opener
    let opened = Mutex<ReplicaStore?>(nil)

    public init(opener: @escaping Opener) { self.opener = opener }

    /// The open replica; throws ``ReplicaLocked`` while it waits for a passphrase. The opener
    /// runs outside the lock (it may run scrypt): pages never wait on one another for it. Two
    /// first requests at once may both open the file; the first one kept is used.
    func store() throws -> ReplicaStore {
        if let store = opened.withLock({ $0 }) { return store }
        guard let store = try opener(nil) else { throw ReplicaLocked() }
        return opened.withLock { opened in
            if let kept = opened { return kept }
            opened = store
            return store
        }
    }

    /// Opens the replica with `passphrase`; once it is open, nothing is opened again (a duress
    /// passphrase must not switch the file under a replica already in use).
    func unlock(passphrase: String) throws {
        guard opened.withLock({ $0 }) == nil else { return }
        guard let store = try opener(passphrase) else { throw ConsoleError(.unauthorized, "the replica stayed locked") }
        opened.withLock { opened in if opened == nil { opened = store } }
    }
}

/// Everything the console's routes share.
public struct ConsoleConfiguration: Sendable {
    public var replica: ConsoleReplica
    public var sessions: ConsoleSessions
    public var sync: ConsoleSyncJob
    public var port: ConsolePort
    public var newEntryID: @Sendable () -> String
    /// The path every page lives under, `/` or `/PREFIX/`: the session cookie's path.
    public var base: String

    /// A base path nobody can guess, for ``base``.
    public static func randomBase() -> String { "/" + ConsoleSessions.newToken().prefix(22) + "/" }

    public init(
        replica: ConsoleReplica, sessions: ConsoleSessions, sync: ConsoleSyncJob, port: ConsolePort = ConsolePort(),
        base: String = "/", newEntryID: @escaping @Sendable () -> String
    ) {
        self.base = base
        self.replica = replica
        self.sessions = sessions
        self.sync = sync
        self.port = port
        self.newEntryID = newEntryID
    }
}

/// The console's routes: pages, forms and the static files, behind ``ConsoleGuard``.
public func buildConsoleRouter(_ configuration: ConsoleConfiguration, logger: Logger) -> Router<ConsoleRequestContext> {
    let router = Router(context: ConsoleRequestContext.self)
    router.add(
        middleware: ConsoleGuard(sessions: configuration.sessions, port: configuration.port, base: configuration.base, logger: logger))
    let prefix = configuration.base.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
    ConsoleRoutes(configuration: configuration, logger: logger).add(to: prefix.isEmpty ? router.group() : router.group(RouterPath(prefix)))
    return router
}

/// Builds the console on 127.0.0.1 (never another address). `onServerRunning` gets the bound port.
public func buildConsoleApplication(
    _ configuration: ConsoleConfiguration, port: Int, logger: Logger, onServerRunning: @escaping @Sendable (Int) async -> Void
) -> some ApplicationProtocol {
    Application(
        router: buildConsoleRouter(configuration, logger: logger),
        configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "fieldsync-console"),
        onServerRunning: { channel in
            let bound = channel.localAddress?.port ?? port
            configuration.port.set(bound)
            await onServerRunning(bound)
        },
        logger: logger)
}

struct ConsoleRoutes: Sendable {
    let configuration: ConsoleConfiguration
    let logger: Logger

    var replica: ConsoleReplica { configuration.replica }

    func add(to router: RouterGroup<ConsoleRequestContext>) {
        router.get("/static/console.css") { _, _ in asset(ConsoleAssets.css, type: "text/css; charset=utf-8") }
        router.get("/static/console.js") { _, _ in asset(ConsoleAssets.javascript, type: "text/javascript; charset=utf-8") }
        router.get("/favicon.ico") { _, _ in Response(status: .noContent) }
        router.get("/login") { request, _ in try login(request) }
        router.post("/logout") { request, context in
            _ = try await form(request, context)
            if let session = context.session { configuration.sessions.end(session: session.id) }
            var response = ConsolePage.response(
                ConsolePage.render(title: "Signed out", current: nil, session: nil, body: "<h1>Signed out</h1><p>Close this tab.</p>"))
            response.headers[.setCookie] = "\(ConsoleGuard.cookieName)=; Path=\(configuration.base); HttpOnly; SameSite=Strict; Max-Age=0"
            return response
        }
        router.get("/") { _, _ in ConsolePage.redirect(to: "/incidents") }
        router.get("/unlock") { _, context in unlockPage(context, error: nil) }
        router.post("/unlock") { request, context in
            let form = try await form(request, context)
            do {
                try replica.unlock(passphrase: form["passphrase"] ?? "")
            } catch let error as ConsoleError {
                throw error
            } catch {
                return unlockPage(context, error: "\(error)", status: .unauthorized)
            }
            return ConsolePage.redirect(to: "/incidents")
        }
        router.get("/incidents") { request, context in
            let store = try replica.store()
            let page = IncidentListPage(query: FormData(request.uri.query ?? ""))
            return ConsolePage.response(page.render(try store.records(), session: context.session))
        }
        router.get("/incidents/new") { _, context in
            _ = try replica.store()
            return formPage(title: "New incident", action: "/incidents", state: nil, submitted: nil, errors: [:], context: context)
        }
        router.post("/incidents") { request, context in
            let store = try replica.store()
            let form = try await form(request, context)
            let reading = IncidentForm.read(form, current: nil, mayResolve: try ConflictResolution.mayResolve(in: store))
            guard reading.errors.isEmpty else {
                return formPage(
                    title: "New incident", action: "/incidents", state: nil, submitted: form, errors: reading.errors, context: context,
                    status: .unprocessableContent)
            }
            try consumeFormToken(form, context)
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let id = RecordID.generate(millisecondsSince1970: now)
            do {
                let operations = try LocalEdit.operations(for: reading.changes, current: nil, newEntryID: configuration.newEntryID)
                _ = try store.commitLocal(record: id, now: now) { _ in (.put, operations, nil) }
            } catch let error as ValidationError {
                return formPage(
                    title: "New incident", action: "/incidents", state: nil, submitted: form, errors: errors(for: error), context: context,
                    status: .unprocessableContent)
            }
            return ConsolePage.redirect(to: "/incidents/\(id.rawValue)?saved=created")
        }
        router.get("/incidents/:id") { request, context in
            let store = try replica.store()
            let state = try record(store, context)
            let notice: String? =
                switch request.uri.queryParameters.get("saved") {
                case "created": "Recorded and signed by this replica."
                case "edited": "Saved as a new signed revision."
                case "candidate":
                    "Saved. Some fields you changed are in conflict: your values are kept as one more candidate until an admin resolves them."
                default: nil
                }
            return ConsolePage.response(try IncidentPage.render(store: store, state: state, notice: notice, session: context.session))
        }
        router.get("/incidents/:id/edit") { _, context in
            let store = try replica.store()
            let state = try record(store, context)
            return formPage(
                title: "Edit: \(state.value(at: "title")?.stringValue ?? "")", action: "/incidents/\(state.id.rawValue)", state: state,
                submitted: nil, errors: [:], context: context)
        }
        router.post("/incidents/:id") { request, context in
            let store = try replica.store()
            let state = try record(store, context)
            let form = try await form(request, context)
            let title = "Edit: \(state.value(at: "title")?.stringValue ?? "")"
            let action = "/incidents/\(state.id.rawValue)"
            let reading = IncidentForm.read(form, current: state, mayResolve: try ConflictResolution.mayResolve(in: store))
            guard reading.errors.isEmpty else {
                return formPage(
                    title: title, action: action, state: state, submitted: form, errors: reading.errors, context: context,
                    status: .unprocessableContent)
            }
            guard !reading.changes.isEmpty else {
                return formPage(
                    title: title, action: action, state: state, submitted: form, errors: ["": "nothing changed; the record is as it was"],
                    context: context, status: .unprocessableContent)
            }
            try consumeFormToken(form, context)
            let outcome: [String]
            do {
                outcome = try RecordEdit(changes: reading.changes).commit(
                    to: store, record: state.id, now: Int64(Date().timeIntervalSince1970 * 1000), newEntryID: configuration.newEntryID
                ).candidatePaths
            } catch let error as ValidationError {
                return formPage(
                    title: title, action: action, state: state, submitted: form, errors: errors(for: error), context: context,
                    status: .unprocessableContent)
            } catch let error as StoreError {
                return formPage(
                    title: title, action: action, state: state, submitted: form, errors: ["": error.message], context: context,
                    status: .conflict)
            }
            return ConsolePage.redirect(to: "\(action)?saved=\(outcome.isEmpty ? "edited" : "candidate")")
        }
        router.get("/incidents/:id/attachments/:sha") { _, context in
            let store = try replica.store()
            let state = try record(store, context)
            guard let sha = context.parameters.get("sha"),
                IncidentForm.entries(of: IncidentSchema.attachmentCollection, in: state).contains(sha),
                let manifest = try store.localManifest(of: sha), try store.localState(of: sha) == .complete
            else { throw ConsoleError.notFound("this attachment is not on this laptop") }
            let mediaType = state.value(at: "attachments.\(sha).media_type")?.stringValue ?? ""
            var buffer = ByteBuffer()
            for index in manifest.chunks.indices { buffer.writeBytes(try store.blobs.chunk(index, of: manifest)) }
            let inline = IncidentPage.inlineImages.contains(mediaType)
            var headers: HTTPFields = [.contentType: inline ? mediaType : "application/octet-stream"]
            headers[.contentDisposition] =
                inline
                ? "inline" : Self.contentDisposition(name: state.value(at: "attachments.\(sha).name")?.stringValue ?? sha, fallback: sha)
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: buffer))
        }
        router.get("/conflicts") { _, context in try conflictsPage(context, message: nil) }
        router.post("/conflicts/:id") { request, context in
            let store = try replica.store()
            let state = try record(store, context)
            let form = try await form(request, context)
            guard try ConflictResolution.mayResolve(in: store) else {
                throw ConsoleError(.forbidden, "only an admin may resolve conflicts: an admin decides these")
            }
            do {
                let resolution = try ConflictsPage.resolution(form, state: state)
                let revision = try resolution.commit(to: store, shown: state, now: Int64(Date().timeIntervalSince1970 * 1000))
                let settled = resolution.choices.keys.sorted().joined(separator: ", ")
                return try conflictsPage(
                    context, message: (state.id, "Resolved \(settled) as \(revision.dot), signed by this replica.", false), status: .ok)
            } catch let error as ConsoleError {
                return try conflictsPage(context, message: (state.id, error.message, true), status: error.status)
            } catch let refusal as ConflictResolution.Refusal {
                return try conflictsPage(context, message: (state.id, refusal.message, true), status: .conflict)
            } catch let error as StoreError {
                return try conflictsPage(context, message: (state.id, error.message, true), status: .conflict)
            } catch let error as ValidationError {
                return try conflictsPage(context, message: (state.id, error.description, true), status: .unprocessableContent)
            }
        }
        router.get("/chart") { _, context in
            let store = try replica.store()
            let chart = TimelineChart(try store.records())
            var notes: [HTML] = []
            if chart.undated > 0 {
                notes.append(
                    "<p class=\"hint\">\(chart.undated) incident\(chart.undated == 1 ? "" : "s") without a start day are not shown.</p>")
            }
            if chart.beforeChart > 0 {
                notes.append(
                    "<p class=\"hint\">\(chart.beforeChart) incident\(chart.beforeChart == 1 ? "" : "s") before \(chart.days.first ?? "") are not shown (the chart spans the last year that has incidents).</p>"
                )
            }
            let note = HTML.joined(notes)
            let body: HTML = "<h1>Timeline</h1>\(chart.svg())\(note)\(chart.table())"
            return ConsolePage.response(ConsolePage.render(title: "Timeline", current: "/chart", session: context.session, body: body))
        }
        router.get("/sync") { _, context in try syncPage(context) }
        router.post("/sync") { request, context in
            let store = try replica.store()
            _ = try await form(request, context)
            guard configuration.sync.runner != nil else { throw ConsoleError(.conflict, "this console cannot sync") }
            guard try store.enrolment() != nil || store.identity().server != nil else {
                throw ConsoleError(
                    .conflict, "this replica has no central node: enrol it with `fieldsync enroll`, or exchange bundles")
            }
            _ = configuration.sync.start(store)
            return ConsolePage.redirect(to: "/sync")
        }
        router.get("/sync/progress") { _, _ in
            let state = configuration.sync.current
            let body: JSONValue = [
                "running": .bool(state.running), "text": .string(state.progress.text), "done": .int(state.progress.done),
                "total": .int(state.progress.total), "failed": .bool(state.failed),
            ]
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: body.canonicalText)))
        }
        router.get("/status") { _, context in
            ConsolePage.response(try StatusPage.render(store: try replica.store(), session: context.session))
        }
    }

    /// `attachment; filename="ASCII"; filename*=UTF-8''PERCENT-ENCODED` (RFC 6266): the name as
    /// written, Arabic included, and nothing in it can end the header or the parameter.
    static func contentDisposition(name: String, fallback: String) -> String {
        let ascii = String(
            name.unicodeScalars.filter {
                $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || ".-_ ".unicodeScalars.contains($0))
            })
        var allowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)..<Unicode.Scalar(128)))
        allowed.insert(charactersIn: ".-_")
        let encoded = name.addingPercentEncoding(withAllowedCharacters: allowed) ?? fallback
        return "attachment; filename=\"\(ascii.isEmpty ? fallback : ascii)\"; filename*=UTF-8''\(encoded)"
    }

    func asset(_ text: String, type: String) -> Response {
        Response(
            status: .ok, headers: [.contentType: type, .cacheControl: "no-store"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// Exchanges the one-time token for the session cookie, then sends the browser on without the
    /// token in its address bar or history.
    func login(_ request: Request) throws -> Response {
        guard let token = request.uri.queryParameters.get("token"), let session = configuration.sessions.exchange(loginToken: String(token))
        else {
            throw ConsoleError(
                .unauthorized, "this login link is not valid or was used already: restart `fieldsync console` for a new one")
        }
        var response = ConsolePage.redirect(to: "/incidents")
        // Path: the browser sends the cookie to this console's pages only, never to another server
        // on 127.0.0.1 (cookies ignore ports).
        response.headers[.setCookie] = "\(ConsoleGuard.cookieName)=\(session); Path=\(configuration.base); HttpOnly; SameSite=Strict"
        return response
    }

    /// The body of a POSTed form, once its CSRF token checks out.
    func form(_ request: Request, _ context: ConsoleRequestContext) async throws -> FormData {
        let body = try await request.body.collect(upTo: context.maxUploadSize)
        guard let form = FormData(validating: String(buffer: body)) else {
            throw ConsoleError(.badRequest, "the form was not sent as a browser sends one (bad percent-encoding): nothing was changed")
        }
        guard let session = context.session, configuration.sessions.checkCSRF(session: session.id, offered: form["_csrf"] ?? "") else {
            throw ConsoleError(.forbidden, "the form's security token is missing or stale: reload the page and try again")
        }
        return form
    }

    /// Uses up the form's one-time token: the same form saved twice is refused, not written twice.
    func consumeFormToken(_ form: FormData, _ context: ConsoleRequestContext) throws {
        guard let session = context.session, configuration.sessions.consumeFormToken(session: session.id, form["_form"] ?? "") else {
            throw ConsoleError(
                .conflict, "this form was saved already (or is from an earlier session): open it again to make another change")
        }
    }

    func record(_ store: ReplicaStore, _ context: ConsoleRequestContext) throws -> RecordState {
        guard let text = context.parameters.get("id"), let id = RecordID(text), let state = try store.record(id) else {
            throw ConsoleError.notFound("no such incident")
        }
        return state
    }

    /// A message for the form field that holds `error.path`, and on top of the form.
    func errors(for error: ValidationError) -> [String: String] {
        var errors = ["": error.description]
        let path = error.path
        if path.hasPrefix("custom.") {
            errors["c.\(path.dropFirst("custom.".count))"] = error.message
        } else if IncidentSchema.entryPath(of: path) != nil {
            errors["e.\(path)"] = error.message
        } else if !path.isEmpty {
            errors["f.\(path)"] = error.message
        }
        return errors
    }

    func formPage(
        title: String, action: String, state: RecordState?, submitted: FormData?, errors: [String: String], context: ConsoleRequestContext,
        status: HTTPResponse.Status = .ok
    ) -> Response {
        let token = context.session.map { configuration.sessions.issueFormToken(session: $0.id) } ?? ""
        let form = IncidentForm.render(
            action: action, state: state, submitted: submitted, errors: errors, session: context.session, formToken: token,
            submitLabel: state == nil ? "Record incident" : "Save changes")
        let heading: HTML = "<h1 dir=\"auto\">\(title)</h1>"
        return ConsolePage.response(
            ConsolePage.render(
                title: errors.isEmpty ? title : "Not saved: \(title)", current: state == nil ? "/incidents/new" : nil,
                session: context.session,
                body: heading + form), status: status)
    }

    func conflictsPage(
        _ context: ConsoleRequestContext, message: (recordID: RecordID, text: String, isError: Bool)?, status: HTTPResponse.Status = .ok
    ) throws -> Response {
        let store = try replica.store()
        let page = try ConflictsPage.render(
            store: store, records: try store.records(conflictedOnly: true), mayResolve: try ConflictResolution.mayResolve(in: store),
            message: message,
            session: context.session)
        return ConsolePage.response(page, status: status)
    }

    func syncPage(_ context: ConsoleRequestContext) throws -> Response {
        let store = try replica.store()
        let state = configuration.sync.current
        let summary = HTML.joined(state.summary.map { "<li>\($0)</li>" })
        let result: HTML =
            state.summary.isEmpty
            ? ""
            : "<section><h2>\(state.failed ? "The last sync failed" : "Last sync")</h2><ul class=\"\(state.failed ? "error" : "")\">\(summary)</ul></section>"
        let progress: HTML =
            state.running
            ? "<progress aria-label=\"Sync progress\"\(state.progress.total > 0 ? HTML(" max=\"\(state.progress.total)\" value=\"\(state.progress.done)\"") : "")></progress>"
            : ""
        let server = try store.enrolment()?.server ?? store.identity().server ?? "none"
        let body: HTML = """
            <h1>Sync</h1>
            <p>Central node: \(server). Last sync: \(try store.lastSync().map(ConsolePage.time) ?? "never").</p>
            <div id="sync-progress" data-href="/sync/progress" data-running="\(state.running ? "true" : "false")" aria-live="polite">
            <p data-progress-text>\(state.progress.text)</p>\(progress)
            </div>
            \(state.running ? HTML("<p class=\"hint\">This page follows the sync; <a href=\"/sync\">reload</a> if it does not.</p>") : HTML("<form method=\"post\" action=\"/sync\">\(ConsolePage.csrfField(context.session))<button type=\"submit\">Sync now</button></form>"))
            \(result)
            """
        return ConsolePage.response(
            ConsolePage.render(title: "Sync", current: "/sync", session: context.session, refresh: state.running ? 2 : nil, body: body))
    }

    func unlockPage(_ context: ConsoleRequestContext, error: String?, status: HTTPResponse.Status = .ok) -> Response {
        let message: HTML = error.map { "<p class=\"error\" role=\"alert\">\($0)</p>" } ?? ""
        let body: HTML = """
            <h1>Unlock the replica</h1>
            <p>This replica is encrypted. Give its passphrase (or run <code>fieldsync unlock</code> and reload).</p>
            \(message)
            <form method="post" action="/unlock">\(ConsolePage.csrfField(context.session))
            <label for="passphrase">Passphrase</label>
            <input type="password" id="passphrase" name="passphrase" autocomplete="current-password">
            <p><button type="submit">Unlock</button></p>
            </form>
            """
        return ConsolePage.response(ConsolePage.render(title: "Unlock", current: nil, session: context.session, body: body), status: status)
    }
}
