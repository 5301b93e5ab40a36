import FieldSyncCore
import FieldSyncProtocol
import Foundation
import Testing

/// `Protocol/vectors/node-ids.json` and `certificates.json`, written by an independent
/// implementation (`make-trust-vectors.py`, Python's `cryptography`).
@Suite struct TrustVectorTests {
    static func load(_ name: String) throws -> JSONValue {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Protocol/vectors/\(name)")
        return try JSONValue(parsing: Array(try Data(contentsOf: url)))
    }

    @Test func nodeIDsDeriveFromKeyAndNonce() throws {
        let cases = try #require(try Self.load("node-ids.json")["cases"]?.arrayValue)
        #expect(cases.count == 3)
        for c in cases {
            let key = try #require(c["public_key"]?.stringValue)
            let nonce = try #require(c["nonce"]?.stringValue)
            let node = try #require(c["node"]?.stringValue.flatMap(NodeID.init))
            #expect(NodeBinding.node(publicKey: key, nonce: nonce) == node)
            #expect(NodeBinding.isBound(node, publicKey: key, nonce: nonce))
            // One hex digit of the nonce changed, or another key: another node id.
            let other = String(nonce.dropLast()) + (nonce.hasSuffix("0") ? "1" : "0")
            #expect(!NodeBinding.isBound(node, publicKey: key, nonce: other))
            #expect(!NodeBinding.isBound(node, publicKey: DeviceKey.generate().publicKeyBase64, nonce: nonce))
        }
        #expect(NodeBinding.node(publicKey: try #require(cases[0]["public_key"]?.stringValue), nonce: "XYZ") == nil)
    }

    @Test func certificatesVerifyAndAreSignedAlike() throws {
        let vectors = try Self.load("certificates.json")
        let serverKey = try #require(vectors["server_key"]?.stringValue)
        #expect(CentralNodeKey.fingerprint(ofPublicKey: serverKey) == vectors["server_fingerprint"]?.stringValue)
        let cases = try #require(vectors["cases"]?.arrayValue)
        for c in cases {
            let certificate = try NodeCertificate(json: try #require(c["certificate"]), at: "certificate")
            #expect(certificate.isIssued(by: serverKey) == (c["valid"] == true), "\(c["name"] ?? "?")")
            #expect(certificate.json == c["certificate"], "round trip")
        }
        // Issuing the first case with the seed reproduces it exactly (Ed25519 is deterministic).
        let seed = try #require(vectors["server_key_seed"]?.stringValue)
        let bytes = stride(from: 0, to: seed.count, by: 2).map { i -> UInt8 in
            UInt8(seed[seed.index(seed.startIndex, offsetBy: i)..<seed.index(seed.startIndex, offsetBy: i + 2)], radix: 16)!
        }
        let key = try DeviceKey(rawRepresentation: bytes)
        #expect(key.publicKeyBase64 == serverKey)
        let first = try NodeCertificate(json: try #require(cases[0]["certificate"]), at: "certificate")
        let issued = try NodeCertificate.issue(
            node: first.node, publicKey: first.publicKey, user: first.user, role: first.role, issued: first.issued, by: key)
        #expect(issued == first)
    }
}
