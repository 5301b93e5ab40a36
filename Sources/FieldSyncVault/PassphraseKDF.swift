import Crypto
import FieldSyncCore
import Foundation
import _CryptoExtras

/// scrypt with r = 8 and p = 1, at a cost (N = 2^log2N) calibrated on the machine that makes a key
/// file or a sealed bundle, and never below 2^17.
public struct PassphraseKDF: Sendable, Equatable {
    public static let minimumLog2N: UInt8 = 17
    /// The most any writer calibrates to (1 GiB); a header asking for more is refused rather than
    /// run, so a hostile sealed bundle cannot make the reader run out of memory.
    public static let maximumLog2N: UInt8 = 20
    public static let r: UInt8 = 8
    public static let p: UInt8 = 1

    public var log2N: UInt8

    public init(log2N: UInt8) { self.log2N = log2N }

    /// Checks the cost read from a file; a lowered one means the file was tampered with.
    public init(checking log2N: UInt8, r: UInt8, p: UInt8, in file: String) throws(VaultError) {
        guard log2N >= Self.minimumLog2N else {
            throw VaultError(
                .tampered,
                "\(file) asks for a scrypt cost of 2^\(log2N), below the minimum 2^\(Self.minimumLog2N): it was tampered with; refusing it")
        }
        guard log2N <= Self.maximumLog2N, r == Self.r, p == Self.p else {
            throw VaultError(.tampered, "\(file) names scrypt parameters this version never writes (N=2^\(log2N), r=\(r), p=\(p))")
        }
        self.log2N = log2N
    }

    /// The highest cost that takes at most about one second here (0.5–1 s when 2^17 is fast), and
    /// never less than 2^17.
    public static func calibrated() -> PassphraseKDF {
        func run() -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try? PassphraseKDF(log2N: minimumLog2N).deriveKey(from: "calibration", salt: [UInt8](repeating: 0, count: 32))
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        var seconds = run()
        // Near the edge of doubling, a second run decides: the first also paid for faulting in
        // its 128 MiB.
        if seconds > 0.5, seconds < 0.65 { seconds = min(seconds, run()) }
        var log2N = minimumLog2N
        while seconds * 2 <= 1.0, log2N < 20 {
            seconds *= 2
            log2N += 1
        }
        return PassphraseKDF(log2N: log2N)
    }

    /// The 32-byte key `passphrase` (NFC, UTF-8) gives with `salt`.
    public func deriveKey(from passphrase: String, salt: [UInt8]) throws -> SymmetricKey {
        try KDF.Scrypt.deriveKey(
            from: Array(passphrase.nfc.utf8), salt: salt, outputByteCount: 32, rounds: 1 << Int(log2N), blockSize: Int(Self.r),
            parallelism: Int(Self.p))
    }
}

/// What went wrong with a key file, a passphrase, the agent or a sealed bundle: one line for the user.
public struct VaultError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable { case wrongPassphrase, tampered, truncated, missing, io, noPassphrase, agent, invalid }
    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }
}
