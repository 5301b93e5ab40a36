import Crypto
import Foundation
import Testing

@testable import FieldSyncEd25519

/// `Protocol/vectors/signatures.json`, written by an independent Python implementation of spec
/// 14.3's rule: swift-crypto and the tabulated key give every listed verdict.
@Suite struct SignatureVectorTests {
    struct Case: Decodable {
        var name: String
        var publicKey: String
        var message: String
        var signature: String
        var valid: Bool

        enum CodingKeys: String, CodingKey {
            case name, message, signature, valid
            case publicKey = "public_key"
        }
    }

    struct Vectors: Decodable {
        var cases: [Case]
    }

    @Test func bothVerifiersGiveEveryVerdictOfTheVectors() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Protocol/vectors/signatures.json")
        let vectors = try JSONDecoder().decode(Vectors.self, from: Data(contentsOf: url))
        #expect(vectors.cases.count >= 16)
        #expect(vectors.cases.contains { $0.valid } && vectors.cases.contains { !$0.valid })
        for item in vectors.cases {
            let key = Ed25519VerifyingKeyTests.hex(item.publicKey)
            let message = Ed25519VerifyingKeyTests.hex(item.message)
            let signature = Ed25519VerifyingKeyTests.hex(item.signature)
            #expect(Ed25519VerifyingKeyTests.swiftCryptoAccepts(signature, message, key: key) == item.valid, "\(item.name)")
            #expect(Ed25519VerifyingKeyTests.oursAccepts(signature, message, key: key) == item.valid, "\(item.name)")
        }
    }
}
