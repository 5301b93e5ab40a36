import Foundation
import HTTPTypes
import Hummingbird

/// The console's page frame and responses: one layout with the navigation, a title that names the
/// page, the session's CSRF token for forms, and nothing loaded from anywhere but the console.
enum ConsolePage {
    /// Where the console's pages live (`/`, or a random `/PREFIX/` so that the session cookie,
    /// whose path it is, is never sent to another server on 127.0.0.1). Set by ``ConsoleGuard``
    /// for each request; pages are written with root paths and placed under it on the way out.
    @TaskLocal static var base = "/"

    /// `href="/x"`, `action="/x"`, `src="/x"` and `data-href="/x"` under ``base``. Only markup
    /// written in code can hold those: a quote in a record's text is always escaped.
    static func placed(_ text: String) -> String {
        guard base != "/" else { return text }
        var text = text
        for attribute in [" href=\"/", " action=\"/", " src=\"/", " data-href=\"/"] {
            text = text.replacingOccurrences(of: attribute, with: attribute + base.dropFirst())
        }
        return text
    }

    static let sections: [(path: String, label: String)] = [
        ("/incidents", "Incidents"), ("/incidents/new", "New incident"), ("/conflicts", "Conflicts"), ("/chart", "Timeline"),
        ("/sync", "Sync"), ("/status", "Status"),
    ]

    /// A whole page. `current` marks the navigation entry of this page.
    static func render(title: String, current: String?, session: (id: String, csrf: String)?, refresh: Int? = nil, body: HTML) -> HTML {
        let nav = HTML.joined(
            sections.map { section in
                section.path == current
                    ? "<li><a href=\"\(section.path)\" aria-current=\"page\">\(section.label)</a></li>"
                    : "<li><a href=\"\(section.path)\">\(section.label)</a></li>"
            })
        // Without script, a page that follows a running sync reloads itself.
        let meta: HTML = refresh.map { "<noscript><meta http-equiv=\"refresh\" content=\"\($0)\"></noscript>\n" } ?? ""
        let navigation: HTML =
            session == nil
            ? ""
            : "<nav aria-label=\"Sections\"><ul>\(nav)</ul></nav><form method=\"post\" action=\"/logout\" class=\"signout\">\(csrfField(session))<button type=\"submit\" class=\"secondary\">Sign out</button></form>"
        return """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            \(meta)<title>\(title) · FieldSync</title>
            <link rel="icon" href="data:,">
            <link rel="stylesheet" href="/static/console.css">
            <script src="/static/console.js" defer></script>
            </head>
            <body>
            <a class="skip" href="#main">Skip to content</a>
            <header><p class="brand">FieldSync</p>\(navigation)</header>
            <main id="main">
            \(body)
            </main>
            </body>
            </html>
            """
    }

    static func response(_ page: HTML, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "text/html; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: placed(page.text))))
    }

    /// A redirect to a page's root path, under ``base``.
    static func redirect(to location: String) -> Response {
        Response(status: .seeOther, headers: [.location: base + location.dropFirst()])
    }

    static func errorResponse(_ error: ConsoleError, session: (id: String, csrf: String)?) -> Response {
        let title = error.status == .unauthorized ? "Not signed in" : "Error \(error.status.code)"
        let body: HTML = """
            <h1>\(title)</h1>
            <p class="error" role="alert">\(error.message)</p>
            """
        return response(render(title: title, current: nil, session: session, body: body), status: error.status)
    }

    /// The hidden field every form carries.
    static func csrfField(_ session: (id: String, csrf: String)?) -> HTML {
        "<input type=\"hidden\" name=\"_csrf\" value=\"\(session?.csrf ?? "")\">"
    }

    static func time(_ ms: Int64) -> String {
        Date(timeIntervalSince1970: Double(ms) / 1000)
            .formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: false).timeSeparator(.colon))
    }
}
