import CFieldSyncSystem
import FieldSyncStore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The unlock agent: a small process that holds one replica's data key in locked memory, like
/// ssh-agent, so that commands need no passphrase until it forgets the key.
///
/// - It listens on a Unix socket (mode 0600) in a folder of mode 0700 under `$XDG_RUNTIME_DIR`
///   (else `/tmp/fieldsync-UID`), named after the key file's random id.
/// - It answers only peers of its own uid (checked with `SO_PEERCRED`).
/// - Its memory is not dumpable, and the key's page is locked out of swap.
/// - It forgets the key and exits on its deadline, on `lock`, and on wipe.
///
/// The protocol is one line each way: `key` → `key HEX`; `lock` → `locked`.
public enum KeyAgent {
    /// The folder of agent sockets for this user; made (0700) when missing, refused when it is not
    /// this user's own or others may enter it.
    public static func socketFolder(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        let folder: String
        if let runtime = environment["XDG_RUNTIME_DIR"], !runtime.isEmpty {
            folder = runtime + "/fieldsync"
        } else {
            folder = "/tmp/fieldsync-\(getuid())"
        }
        if mkdir(folder, 0o700) != 0, errno != EEXIST {
            throw VaultError(.agent, "cannot make the agent folder \(folder): \(String(cString: strerror(errno)))")
        }
        var info = stat()
        guard lstat(folder, &info) == 0, info.st_mode & S_IFMT == S_IFDIR, info.st_uid == getuid(), info.st_mode & 0o077 == 0 else {
            throw VaultError(.agent, "the agent folder \(folder) is not this user's own with mode 0700; refusing to use it")
        }
        return folder
    }

    public static func socketPath(for keyFile: KeyFile, environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> String
    {
        try socketFolder(environment: environment) + "/agent-" + keyFile.fileID.map { String(format: "%02x", $0) }.joined() + ".sock"
    }

    /// Makes this process non-dumpable (no core file carries a key, no same-user ptrace attach).
    public static func makeProcessNondumpable() { fieldsync_set_nondumpable() }

    // MARK: Client

    /// The data key from a running agent for `keyFile`, or nil when none runs (a stale socket is
    /// removed).
    public static func fetchKey(for keyFile: KeyFile) -> StoreKey? {
        guard let path = try? socketPath(for: keyFile), let reply = try? request("key", socket: path), reply.hasPrefix("key ") else {
            return nil
        }
        let hex = Array(reply.dropFirst(4).utf8)
        guard hex.count == 64 else { return nil }
        var bytes: [UInt8] = []
        var index = 0
        while index < 64 {
            guard let byte = UInt8(String(decoding: hex[index..<index + 2], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
            index += 2
        }
        return try? StoreKey(rawBytes: bytes)
    }

    /// Asks the agent of `keyFile` to forget its key and exit. True when one was running.
    @discardableResult
    public static func lock(_ keyFile: KeyFile) -> Bool {
        guard let path = try? socketPath(for: keyFile) else { return false }
        return (try? request("lock", socket: path)) == "locked"
    }

    static func request(_ line: String, socket path: String) throws -> String {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw VaultError(.agent, "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = try unixAddress(path)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            if errno == ECONNREFUSED { unlink(path) }
            throw VaultError(.agent, "no agent")
        }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        try SecureFile.writeAll(fd, Array((line + "\n").utf8), path: path)
        return try readLine(fd)
    }

    static func readLine(_ fd: Int32) throws -> String {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while bytes.count < 512 {
            let count = read(fd, &byte, 1)
            if count < 0, errno == EINTR { continue }
            guard count == 1 else { break }
            if byte == 0x0A { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
        throw VaultError(.agent, "the agent's answer was cut short")
    }

    static func unixAddress(_ path: String) throws -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw VaultError(.agent, "the agent socket path \(path) is too long for a Unix socket")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in bytes.enumerated() { buffer[index] = byte }
        }
        return address
    }

    // MARK: Server

    /// Reads the data key (64 hex digits and a line feed) from `input` straight into a locked page,
    /// then serves it on `socketPath` until `seconds` have passed (boot time, so a suspended laptop
    /// does not stretch the time), a `lock` arrives, or the socket is removed or replaced; then it
    /// zeroes the key and removes the socket. `ready` runs once the socket listens. Blocks.
    public static func serve(readingKeyFrom input: Int32, socketPath path: String, seconds: Int, ready: () -> Void) throws {
        // Not dumpable: no core file, and no ptrace attach by other processes of the same user.
        fieldsync_set_nondumpable()
        // One page, locked out of swap: the key at 0..<32, the hex read or written at 64..<129.
        let page = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096)
        mlock(page.baseAddress, page.count)
        memset(page.baseAddress!, 0, page.count)
        defer {
            memset(page.baseAddress!, 0, page.count)
            munlock(page.baseAddress, page.count)
            page.deallocate()
        }
        let hex = page.baseAddress! + 64
        var got = 0
        while got < 65 {
            let count = read(input, hex + got, 65 - got)
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            got += count
        }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x61...0x66: c - 0x61 + 10
            default: nil
            }
        }
        guard got == 65, page[64 + 64] == 0x0A else { throw VaultError(.agent, "agent: expected the key on standard input") }
        for index in 0..<StoreKey.byteCount {
            guard let high = nibble(page[64 + 2 * index]), let low = nibble(page[64 + 2 * index + 1]) else {
                throw VaultError(.agent, "agent: the key is not hexadecimal")
            }
            page[index] = high << 4 | low
        }
        memset(hex, 0, 65)

        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { throw VaultError(.agent, "socket: \(String(cString: strerror(errno)))") }
        var boundInode: ino_t = 0
        defer {
            close(listener)
            // Only its own socket: another agent may have replaced it.
            var info = stat()
            if stat(path, &info) == 0, info.st_ino == boundInode { unlink(path) }
        }
        unlink(path)
        var address = try unixAddress(path)
        let previous = umask(0o177)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(previous)
        var info = stat()
        guard bound == 0, chmod(path, 0o600) == 0, listen(listener, 8) == 0, stat(path, &info) == 0 else {
            throw VaultError(.agent, "cannot listen on \(path): \(String(cString: strerror(errno)))")
        }
        boundInode = info.st_ino
        ready()
        let deadline = bootNanoseconds() + UInt64(seconds) * 1_000_000_000
        while true {
            let now = bootNanoseconds()
            guard now < deadline else { return }
            // A socket removed (its folder deleted, a wipe) or replaced (a newer agent) ends this one.
            var current = stat()
            guard stat(path, &current) == 0, current.st_ino == boundInode else { return }
            var poll = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            let waited = Glibc.poll(&poll, 1, Int32(min(1000, (deadline - now) / 1_000_000 + 1)))
            if waited <= 0 { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            defer { close(client) }
            guard fieldsync_peer_uid(client) == Int(getuid()) else {
                _ = try? SecureFile.writeAll(client, Array("refused\n".utf8), path: path)
                continue
            }
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            guard let line = try? readLine(client) else { continue }
            switch line {
            case "key":
                // Written from the locked page, never through a Swift string.
                let digits = Array("0123456789abcdef".utf8)
                let reply = hex
                memcpy(reply, "key ", 4)
                for index in 0..<StoreKey.byteCount {
                    page[64 + 4 + 2 * index] = digits[Int(page[index] >> 4)]
                    page[64 + 4 + 2 * index + 1] = digits[Int(page[index] & 0xF)]
                }
                page[64 + 4 + 64] = 0x0A
                var sent = 0
                while sent < 69 {
                    let count = write(client, reply + sent, 69 - sent)
                    if count < 0, errno == EINTR { continue }
                    guard count > 0 else { break }
                    sent += count
                }
                memset(reply, 0, 69)
            case "lock":
                _ = try? SecureFile.writeAll(client, Array("locked\n".utf8), path: path)
                return
            default:
                _ = try? SecureFile.writeAll(client, Array("error unknown request\n".utf8), path: path)
            }
        }
    }

    /// Time since boot, suspend included (CLOCK_BOOTTIME).
    static func bootNanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_BOOTTIME, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}
