import Foundation
import NIOSSL
import PostgresNIO

/// Where a PostgreSQL-backed central node keeps its data: `postgres://USER:PASSWORD@HOST:PORT/DB`,
/// with `?sslmode=disable|prefer|require|verify-full` (libpq's names; `prefer` when none is given)
/// and, for `verify-full`, `&sslrootcert=FILE`.
public struct PostgresURL: Sendable, Equatable, CustomStringConvertible {
    public enum TLSMode: String, Sendable {
        case disable, prefer, require
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var tls: TLSMode
    public var rootCertificate: String?

    public init(
        host: String, port: Int = 5432, user: String, password: String? = nil, database: String, tls: TLSMode = .prefer,
        rootCertificate: String? = nil
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.tls = tls
        self.rootCertificate = rootCertificate
    }

    /// Parses a connection URL; throws a one-line ``PostgresStoreError`` naming what is wrong.
    public init(_ text: String) throws {
        guard let components = URLComponents(string: text), let scheme = components.scheme,
            scheme == "postgres" || scheme == "postgresql"
        else {
            throw PostgresStoreError(
                .invalid, "\(Self.redacted(text)) is not a PostgreSQL URL: give postgres://USER:PASSWORD@HOST:PORT/DATABASE")
        }
        guard let host = components.host, !host.isEmpty else { throw PostgresStoreError(.invalid, "the PostgreSQL URL names no host") }
        guard let user = components.user, !user.isEmpty else { throw PostgresStoreError(.invalid, "the PostgreSQL URL names no user") }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else {
            throw PostgresStoreError(.invalid, "the PostgreSQL URL names no database: end it with /DATABASE")
        }
        var tls = TLSMode.prefer
        var root: String?
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let value = item.value, let mode = TLSMode(rawValue: value == "verify-ca" ? "verify-full" : value) else {
                    throw PostgresStoreError(.invalid, "sslmode=\(item.value ?? ""): give disable, prefer, require or verify-full")
                }
                tls = mode
            case "sslrootcert": root = item.value
            default:
                throw PostgresStoreError(.invalid, "the PostgreSQL URL's \(item.name) parameter is not supported (sslmode, sslrootcert)")
            }
        }
        self.init(
            host: host, port: components.port ?? 5432, user: components.percentEncodedUser.flatMap { $0.removingPercentEncoding } ?? user,
            password: components.percentEncodedPassword.flatMap { $0.removingPercentEncoding }, database: database, tls: tls,
            rootCertificate: root)
    }

    /// The whole URL, password included, as `--database` takes it.
    public var connectionString: String {
        var components = URLComponents()
        components.scheme = "postgres"
        components.user = user
        components.password = password
        components.host = host
        components.port = port
        components.path = "/" + database
        components.queryItems =
            [URLQueryItem(name: "sslmode", value: tls.rawValue)]
            + (rootCertificate.map { [URLQueryItem(name: "sslrootcert", value: $0)] } ?? [])
        return components.string ?? description
    }

    /// The URL without its password, for messages and logs.
    public var description: String { "postgres://\(user)@\(host):\(port)/\(database)?sslmode=\(tls.rawValue)" }

    /// `text` with whatever stands between `://` and the last `@` replaced: never echo a password,
    /// even from a URL that does not parse.
    static func redacted(_ text: String) -> String {
        guard let scheme = text.range(of: "://"), let at = text.range(of: "@", options: .backwards), scheme.upperBound < at.lowerBound
        else { return text.contains("@") ? "the URL given" : text }
        let credentials = text[scheme.upperBound..<at.lowerBound]
        let user = credentials.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
        return text[..<scheme.upperBound] + user + (credentials.contains(":") ? ":***" : "") + text[at.lowerBound...]
    }

    /// The URL without its password, as `pg_dump --dbname` takes it (the password goes in PGPASSWORD).
    public var connectionStringWithoutPassword: String {
        var copy = self
        copy.password = nil
        return copy.connectionString
    }

    /// The TLS settings `sslmode` asks for: nil for `disable`, else whether TLS is required and
    /// the configuration (the server's certificate checked only for `verify-full`).
    func tlsSettings() throws -> (required: Bool, configuration: TLSConfiguration)? {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch tls {
        case .disable: return nil
        case .prefer, .require: configuration.certificateVerification = .none
        case .verifyFull:
            if let rootCertificate {
                do { configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(rootCertificate)) } catch {
                    throw PostgresStoreError(.invalid, "sslrootcert \(rootCertificate): cannot read a PEM certificate from it")
                }
            }
        }
        return (tls != .prefer, configuration)
    }

    /// A single connection's configuration (the reachability probe before the pool starts).
    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        let mode: PostgresConnection.Configuration.TLS =
            switch try tlsSettings() {
            case nil: .disable
            case (let required, let configuration)?:
                required
                    ? .require(try NIOSSLContext(configuration: configuration)) : .prefer(try NIOSSLContext(configuration: configuration))
            }
        return PostgresConnection.Configuration(host: host, port: port, username: user, password: password, database: database, tls: mode)
    }

    /// The client configuration this URL describes.
    func clientConfiguration() throws -> PostgresClient.Configuration {
        let mode: PostgresClient.Configuration.TLS =
            switch try tlsSettings() {
            case nil: .disable
            case (let required, let configuration)?: required ? .require(configuration) : .prefer(configuration)
            }
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: user, password: password, database: database, tls: mode)
        configuration.options.connectTimeout = .seconds(10)
        return configuration
    }
}

/// A failure of the PostgreSQL store, with a one-line message.
public struct PostgresStoreError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable { case invalid, unreachable, schema, notEmpty, io }
    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
