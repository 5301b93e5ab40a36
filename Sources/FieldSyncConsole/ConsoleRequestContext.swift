import Hummingbird

/// Per-request state of the console: the session the cookie named, once ``ConsoleGuard`` checked it.
public struct ConsoleRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The session id and its CSRF token; set for every route but login and the static files.
    public var session: (id: String, csrf: String)?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    /// Forms are small: a narrative of 100,000 bytes and the rest of a record fit.
    public var maxUploadSize: Int { 2 << 20 }
}
