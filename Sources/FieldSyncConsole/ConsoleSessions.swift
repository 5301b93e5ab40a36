import Crypto
import Foundation
import Synchronization

/// The console's login state: the one-time login token printed at start, and the sessions it was
/// exchanged for, each with its own CSRF token. Held in memory only: a restarted console prints a
/// new URL and every old cookie stops working.
public final class ConsoleSessions: Sendable {
    struct State {
        var loginTokenHash: [UInt8]?
        var sessions: [String: String] = [:]
        /// Per session, the one-time tokens of the forms it was shown and has not submitted yet.
        var forms: [String: [String]] = [:]
    }
    let state: Mutex<State>

    /// A new token for the login URL.
    public static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    public init(loginToken: String) {
        state = Mutex(State(loginTokenHash: Array(SHA256.hash(data: Data(loginToken.utf8)))))
    }

    /// Exchanges the login token for a new session id, once: a second use of the URL gets nil.
    func exchange(loginToken: String) -> String? {
        let offered = Array(SHA256.hash(data: Data(loginToken.utf8)))
        return state.withLock { state in
            guard let expected = state.loginTokenHash, Self.constantTimeEqual(expected, offered) else { return nil }
            state.loginTokenHash = nil
            let session = Self.newToken()
            state.sessions[session] = Self.newToken()
            return session
        }
    }

    /// The CSRF token of a live session, or nil for an unknown session id.
    func csrfToken(session: String) -> String? {
        state.withLock { state in state.sessions[session] }
    }

    /// Whether `offered` is the CSRF token of `session`.
    func checkCSRF(session: String, offered: String) -> Bool {
        guard let expected = csrfToken(session: session) else { return false }
        return Self.constantTimeEqual(Array(expected.utf8), Array(offered.utf8))
    }

    /// A token for one form shown in `session`: a second submission of the same form (a double
    /// click on Save, a reload that posts again) is refused instead of adding a record twice.
    func issueFormToken(session: String) -> String {
        let token = Self.newToken()
        state.withLock { state in
            var tokens = state.forms[session, default: []]
            tokens.append(token)
            if tokens.count > 256 { tokens.removeFirst(tokens.count - 256) }
            state.forms[session] = tokens
        }
        return token
    }

    /// Uses up a form token; false when it was never issued to `session` or was used already.
    func consumeFormToken(session: String, _ token: String) -> Bool {
        state.withLock { state in
            guard let index = state.forms[session]?.firstIndex(of: token) else { return false }
            state.forms[session]?.remove(at: index)
            return true
        }
    }

    func end(session: String) {
        state.withLock { state in
            state.sessions[session] = nil
            state.forms[session] = nil
        }
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in a.indices { difference |= a[i] ^ b[i] }
        return difference == 0
    }
}
