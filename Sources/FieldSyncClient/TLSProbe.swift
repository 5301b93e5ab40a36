import Crypto
import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// The central node's TLS identity as a client sees it: the leaf certificate and the SHA-256 of its
/// public key (SubjectPublicKeyInfo), the value that `enroll` pins.
public struct ServerTLSIdentity: Sendable, Equatable {
    /// `sha256:` and 64 lowercase hex digits.
    public var publicKeyPin: String
    /// The leaf certificate in PEM; added to the trust roots so a self-signed central node works.
    public var certificatePEM: String
}

/// Opens one TLS connection to read the server's certificate, without trusting it yet: the caller
/// compares the pin. Used by `enroll` (to record the pin) and before each sync (to check it).
public enum TLSProbe {
    public static func identity(host: String, port: Int, timeout: TimeAmount = .seconds(10)) async throws -> ServerTLSIdentity {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .fullVerification
        let context = try NIOSSLContext(configuration: configuration)
        let captured = CapturedChain()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Accept whatever is presented: this connection carries no data, and the caller
                    // decides by the pin.
                    let handler = try NIOSSLClientHandler(context: context, serverHostname: isIPAddress(host) ? nil : host) {
                        chain, promise in
                        captured.set(chain)
                        promise.succeed(.certificateVerified)
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: host, port: port).get()
        defer { channel.close(promise: nil) }
        // The handshake completes (or fails) shortly after connecting; wait for the chain.
        let deadline = ContinuousClock.now + .seconds(10)
        while captured.get() == nil {
            if ContinuousClock.now > deadline { throw TLSProbeError("no TLS handshake with \(host):\(port); is it serving HTTPS?") }
            try await Task.sleep(for: .milliseconds(20))
        }
        guard let leaf = captured.get()?.first else { throw TLSProbeError("\(host):\(port) presented no certificate") }
        return try describe(leaf)
    }

    static func describe(_ leaf: NIOSSLCertificate) throws -> ServerTLSIdentity {
        let spki = try leaf.extractPublicKey().toSPKIBytes()
        let pin = "sha256:" + SHA256.hash(data: spki).map { String(format: "%02x", $0) }.joined()
        let der = try leaf.toDERBytes()
        let pem =
            "-----BEGIN CERTIFICATE-----\n"
            + Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
            + "\n-----END CERTIFICATE-----\n"
        return ServerTLSIdentity(publicKeyPin: pin, certificatePEM: pem)
    }

    /// The pin of a certificate file's first certificate (for admins: `serve` prints it).
    public static func pin(ofCertificateFile path: String) throws -> String {
        guard let leaf = try NIOSSLCertificate.fromPEMFile(path).first else { throw TLSProbeError("no certificate in \(path)") }
        return try describe(leaf).publicKeyPin
    }

    static func isIPAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }
}

/// The chain seen during the handshake; set once from the event loop, read from the caller's task.
final class CapturedChain: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var chain: [NIOSSLCertificate]?

    func set(_ value: [NIOSSLCertificate]) { lock.withLock { chain = value } }
    func get() -> [NIOSSLCertificate]? { lock.withLock { chain } }
}

/// The TLS identity of the server could not be read.
public struct TLSProbeError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
