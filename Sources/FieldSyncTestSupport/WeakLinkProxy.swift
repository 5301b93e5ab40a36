import Foundation
import Synchronization

/// A TCP proxy on 127.0.0.1 for tests and benchmarks of weak links: it forwards to a target port,
/// and can cut every connection after it has carried `dropAfter` bytes from the client, and slow
/// each direction of a connection to `bytesPerSecond`. It counts the bytes it forwarded each way.
///
/// Given several target ports it is a round-robin load balancer: each new connection goes to the
/// next target that accepts it, so a dead instance is skipped, as nginx's `proxy_next_upstream` does.
///
/// Blocking sockets on threads: simple, and plenty for a handful of test connections.
public final class WeakLinkProxy: Sendable {
    public let port: Int
    let listener: Int32
    let targets: [Int]
    let dropAfter: Int?
    let bytesPerSecond: Int?
    private let state = Mutex(State())

    struct State {
        var forwarded = 0
        var returned = 0
        var drops = 0
        /// Actions run once, on the proxy's own thread, when the bytes one way reach a count.
        var triggers: [(toClients: Bool, count: Int, action: @Sendable () -> Void)] = []
        var stopped = false
        var sockets: Set<Int32> = []
        var next = 0
        var connections: [Int: Int] = [:]
    }

    /// Connections forwarded to each target port so far.
    public var connectionsPerTarget: [Int: Int] { state.withLock { $0.connections } }

    /// Bytes forwarded from clients to the target so far.
    public var bytesFromClients: Int { state.withLock { $0.forwarded } }
    /// Runs `action` once, on the proxy's thread, as soon as the bytes forwarded from clients (or,
    /// with `toClients`, back to them) reach `count` in total: a kill at an exact point of a
    /// transfer, however busy the test's own threads are.
    public func whenBytes(reach count: Int, toClients: Bool = false, _ action: @escaping @Sendable () -> Void) {
        state.withLock { $0.triggers.append((toClients, count, action)) }
    }

    /// Bytes forwarded from the target back to clients so far.
    public var bytesToClients: Int { state.withLock { $0.returned } }
    /// Connections cut on purpose so far.
    public var drops: Int { state.withLock { $0.drops } }
    public var url: String { "http://127.0.0.1:\(port)" }

    public convenience init(targetPort: Int, dropAfter: Int? = nil, bytesPerSecond: Int? = nil) throws {
        try self.init(targetPorts: [targetPort], dropAfter: dropAfter, bytesPerSecond: bytesPerSecond)
    }

    public init(targetPorts: [Int], dropAfter: Int? = nil, bytesPerSecond: Int? = nil) throws {
        precondition(!targetPorts.isEmpty)
        targets = targetPorts
        self.dropAfter = dropAfter
        self.bytesPerSecond = bytesPerSecond
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw ProxyError("socket failed") }
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 64) == 0 else { throw ProxyError("bind or listen failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        getsockname(
            listener, withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { $0 } }, &length)
        port = Int(UInt16(bigEndian: address.sin_port))
        self.listener = listener
        let proxy = self
        Thread.detachNewThread { proxy.acceptLoop() }
    }

    static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    /// Stops accepting and closes every connection.
    public func stop() {
        let sockets = state.withLock { state -> Set<Int32> in
            state.stopped = true
            return state.sockets
        }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for socket in sockets { shutdown(socket, Int32(SHUT_RDWR)) }
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if state.withLock({ $0.stopped }) { return }
                continue
            }
            let first = state.withLock { state -> Int in
                defer { state.next += 1 }
                return state.next
            }
            var upstream: Int32 = -1
            for attempt in 0..<targets.count {
                let target = targets[(first + attempt) % targets.count]
                let candidate = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                var address = Self.loopback(port: target)
                let connected = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        connect(candidate, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
                if connected == 0 {
                    upstream = candidate
                    state.withLock { $0.connections[target, default: 0] += 1 }
                    break
                }
                close(candidate)
            }
            guard upstream >= 0 else {
                close(client)
                continue
            }
            let target = upstream
            state.withLock {
                _ = $0.sockets.insert(client)
                _ = $0.sockets.insert(target)
            }
            let connection = Connection()
            let proxy = self
            Thread.detachNewThread { proxy.pump(from: client, to: target, counting: true, connection: connection) }
            Thread.detachNewThread { proxy.pump(from: target, to: client, counting: false, connection: connection) }
        }
    }

    /// Both directions of one proxied connection; the last to finish closes the sockets.
    final class Connection: Sendable {
        let carried = Mutex(0)
        let open = Mutex(2)
    }

    private func pump(from source: Int32, to sink: Int32, counting: Bool, connection: Connection) {
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        let started = Date()
        var sent = 0
        loop: while true {
            var limit = buffer.count
            if counting, let dropAfter {
                let carried = connection.carried.withLock { $0 }
                limit = min(limit, dropAfter - carried)
                if limit <= 0 {
                    state.withLock { $0.drops += 1 }
                    break loop
                }
            }
            let n = buffer.withUnsafeMutableBytes { recv(source, $0.baseAddress, limit, 0) }
            if n <= 0 { break }
            if let bytesPerSecond {
                // Hold the bytes back until the rate allows them.
                let due = Double(sent + n) / Double(bytesPerSecond) - Date().timeIntervalSince(started)
                if due > 0 { Thread.sleep(forTimeInterval: due) }
            }
            var offset = 0
            while offset < n {
                let w = buffer.withUnsafeBytes { Glibc.send(sink, $0.baseAddress! + offset, n - offset, Int32(MSG_NOSIGNAL)) }
                if w <= 0 { break loop }
                offset += w
            }
            sent += n
            if counting { connection.carried.withLock { $0 += n } }
            let due = state.withLock { state -> [@Sendable () -> Void] in
                if counting { state.forwarded += n } else { state.returned += n }
                let reached = state.triggers.filter {
                    $0.toClients != counting && $0.count <= (counting ? state.forwarded : state.returned)
                }
                state.triggers.removeAll { $0.toClients != counting && $0.count <= (counting ? state.forwarded : state.returned) }
                return reached.map(\.action)
            }
            for action in due { action() }
        }
        shutdown(source, Int32(SHUT_RDWR))
        shutdown(sink, Int32(SHUT_RDWR))
        let last = connection.open.withLock { count -> Bool in
            count -= 1
            return count == 0
        }
        if last {
            close(source)
            close(sink)
            state.withLock {
                _ = $0.sockets.remove(source)
                _ = $0.sockets.remove(sink)
            }
        }
    }
}

public struct ProxyError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
