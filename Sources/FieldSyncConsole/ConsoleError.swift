import HTTPTypes

/// A request the console refuses or cannot serve: rendered as a page with this status and message.
public struct ConsoleError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var message: String

    public init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { message }

    static func notFound(_ what: String) -> ConsoleError { ConsoleError(.notFound, what) }
}

/// Thrown when an encrypted replica is still locked: the guard sends the browser to the unlock page.
struct ReplicaLocked: Error {}
