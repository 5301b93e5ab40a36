import FieldSyncCore
import FieldSyncTestSupport
import Foundation
import Testing

@testable import FieldSyncVault

/// The sealed-bundle vector, made by another implementation (Python), opens here to its plain bundle.
@Suite struct SealedBundleVectorTests {
    @Test func theVectorOpensWithItsPassphraseOnly() async throws {
        // scrypt, many times, in a debug build: on a thread of its own, not the shared pool.
        try await DedicatedThread.run { try body() }
        @Sendable func body() throws {
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            let text = try String(contentsOf: root.appendingPathComponent("Protocol/vectors/sealed-bundles.json"), encoding: .utf8)
            let vectors = try #require(try JSONValue(parsing: text).arrayValue)
            #expect(!vectors.isEmpty)
            for vector in vectors {
                let sealed = try #require(vector["sealed_base64"]?.stringValue.flatMap { Data(base64Encoded: $0) })
                let plain = try #require(vector["plain_base64"]?.stringValue.flatMap { Data(base64Encoded: $0) })
                let passphrase = try #require(vector["passphrase"]?.stringValue)
                #expect(try SealedBundle.open(Array(sealed), passphrase: passphrase, file: "vector") == Array(plain))
                // The NFC form of the passphrase is the same key.
                #expect(try SealedBundle.open(Array(sealed), passphrase: passphrase.nfc, file: "vector") == Array(plain))
                let wrong = try #require(vector["wrong_passphrase"]?.stringValue)
                #expect(throws: VaultError.self) { try SealedBundle.open(Array(sealed), passphrase: wrong, file: "vector") }
            }
        }
    }
}
