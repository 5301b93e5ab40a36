import CFieldSyncSystem
import FieldSyncPostgres
import Foundation
import Synchronization

/// A throwaway PostgreSQL cluster on 127.0.0.1 for the tests, started once per test process in a
/// temporary folder (`initdb`, then `pg_ctl start` with `fsync=off`; as root through
/// `runuser -u postgres`) and stopped when the process exits. Each test takes a database of its own.
///
/// `FIELDSYNC_TEST_POSTGRES=postgres://USER@HOST:PORT/postgres` uses a running cluster instead
/// (`Scripts/postgres-test-cluster.sh` starts one). When neither works the test fails, saying why:
/// it never skips.
public enum PostgresTestCluster {
    /// The cluster's admin URL (database `postgres`), started on first use.
    public static func adminURL() async throws -> PostgresURL {
        if let given = ProcessInfo.processInfo.environment["FIELDSYNC_TEST_POSTGRES"], !given.isEmpty {
            return try PostgresURL(given)
        }
        return try await shared.value.get()
    }

    /// A new, empty database on the test cluster.
    public static func freshDatabase() async throws -> PostgresURL {
        var url = try await adminURL()
        let name = "fieldsync_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        let admin = url
        let result = try await DedicatedThread.run {
            try Self.run(
                Self.binary("psql"),
                [
                    "-X", "-q", "-h", admin.host, "-p", "\(admin.port)", "-U", admin.user, "-d", admin.database, "-c",
                    "CREATE DATABASE \(name)",
                ])
        }
        guard result.status == 0 else { throw ClusterError("cannot create a test database: \(result.output)") }
        url.database = String(name)
        return url
    }

    /// Runs one SQL statement on `url` with psql (a test's way to reach under the store).
    public static func execute(_ sql: String, on url: PostgresURL) async throws {
        let result = try await DedicatedThread.run {
            try Self.run(
                Self.binary("psql"),
                ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", url.host, "-p", "\(url.port)", "-U", url.user, "-d", url.database, "-c", sql])
        }
        guard result.status == 0 else { throw ClusterError("psql failed: \(result.output)") }
    }

    static let shared = Task<Result<PostgresURL, ClusterError>, Never> {
        await DedicatedThread.run {
            do { return .success(try start()) } catch let error as ClusterError { return .failure(error) } catch {
                return .failure(ClusterError("\(error)"))
            }
        }
    }

    struct ClusterError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// Where the running cluster's data folder is, for the exit handler.
    nonisolated(unsafe) static var dataDirectory: String?
    nonisolated(unsafe) static var stopCommand: [String]?

    static func binary(_ name: String) throws -> String {
        let roots = ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []).sorted(by: >)
        for root in roots {
            let path = "/usr/lib/postgresql/\(root)/bin/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        for folder in ["/usr/bin", "/usr/local/bin"] where FileManager.default.isExecutableFile(atPath: "\(folder)/\(name)") {
            return "\(folder)/\(name)"
        }
        throw ClusterError(
            "PostgreSQL's \(name) is not installed: `apt-get install postgresql-15` (`.ci/run` does), or set FIELDSYNC_TEST_POSTGRES to a running cluster"
        )
    }

    /// Runs a command and returns its status and output. `capture: false` reads nothing: a daemon it
    /// starts (the postmaster) would hold the pipe open, and the read would never end.
    static func run(_ executable: String, _ arguments: [String], asPostgres: Bool = false, capture: Bool = true) throws -> (
        status: Int32, output: String
    ) {
        let process = Process()
        if asPostgres {
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
            process.arguments = ["-u", "postgres", "--", executable] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        }
        let pipe = Pipe()
        process.standardOutput = capture ? pipe : FileHandle.nullDevice
        process.standardError = capture ? pipe : FileHandle.nullDevice
        try process.run()
        let output = capture ? String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) : ""
        process.waitUntilExit()
        return (process.terminationStatus, output.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Runs `command` (an absolute path first) with its output discarded, waiting with waitpid;
    /// returns its exit status, or -1 when it could not start.
    ///
    /// The child inherits no descriptor but stdin, stdout and stderr: the postmaster that `pg_ctl
    /// start` leaves behind lives as long as the test process, and with the write ends of other
    /// tests' pipes it kept their readers from ever seeing end-of-file (a CI run hung on four
    /// `serve` children whose output never ended), and it held their sockets too.
    static func spawnAndWait(_ command: [String]) -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        fieldsync_spawn_close_from(&actions, 3)
        var pid: pid_t = 0
        let arguments = command.map { strdup($0) } + [nil]
        defer { for argument in arguments { free(argument) } }
        guard posix_spawn(&pid, command[0], &actions, nil, arguments, environ) == 0 else { return -1 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status & 0x7F) == 0 ? (status >> 8) & 0xFF : -1
    }

    static func freePort() throws -> Int {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw ClusterError("socket failed") }
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) }
        }
        guard bound == 0 else { throw ClusterError("bind failed") }
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        guard named == 0 else { throw ClusterError("getsockname failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Starts a cluster of its own (stopped when the process exits) and returns its admin URL. The
    /// tests' cluster runs with `fsync=off`; a `durable` one keeps PostgreSQL's defaults (fsync and
    /// synchronous commit on), for benchmarks that compare it with SQLite's durable commits.
    public static func start(durable: Bool = false) throws -> PostgresURL {
        let initdb = try binary("initdb")
        let pgctl = try binary("pg_ctl")
        let asPostgres = getuid() == 0
        let folder = NSTemporaryDirectory() + "fieldsync-pg-" + UUID().uuidString.prefix(8)
        let data = folder + "/data"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        if asPostgres {
            // initdb refuses to run as root: the cluster belongs to the postgres user.
            guard try run("/bin/chown", ["postgres", folder]).status == 0 else {
                throw ClusterError("cannot give \(folder) to the postgres user (is PostgreSQL installed?)")
            }
        }
        let made = try run(
            initdb, ["-D", data, "-U", "fieldsync", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C"], asPostgres: asPostgres)
        guard made.status == 0 else { throw ClusterError("initdb failed: \(made.output.suffix(400))") }
        let port = try freePort()
        let fast = durable ? "" : " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        let options =
            "-c listen_addresses=127.0.0.1 -p \(port)\(fast) -c unix_socket_directories='\(folder)' -c max_connections=200"
        // Not through Foundation's Process: the postmaster pg_ctl leaves behind kept its exit from
        // being noticed (the child stayed a zombie, waitUntilExit never returned).
        let prefix = asPostgres ? ["/usr/sbin/runuser", "-u", "postgres", "--", pgctl] : [pgctl]
        let started = spawnAndWait(prefix + ["-D", data, "-o", options, "-l", folder + "/log", "-w", "-t", "60", "start"])
        guard started == 0 else {
            let log = (try? String(contentsOfFile: folder + "/log", encoding: .utf8)) ?? ""
            throw ClusterError("pg_ctl start failed (status \(started)): \(log.suffix(400))")
        }
        dataDirectory = data
        // At exit Foundation's Process can no longer reap its child (its monitor is gone), so the
        // cluster is stopped with posix_spawn and waitpid.
        stopCommand = prefix + ["-D", data, "-m", "fast", "-w", "stop"]
        atexit {
            guard let command = PostgresTestCluster.stopCommand else { return }
            _ = PostgresTestCluster.spawnAndWait(command)
            if let data = PostgresTestCluster.dataDirectory {
                try? FileManager.default.removeItem(atPath: (data as NSString).deletingLastPathComponent)
            }
        }
        return PostgresURL(host: "127.0.0.1", port: port, user: "fieldsync", database: "postgres", tls: .disable)
    }
}
