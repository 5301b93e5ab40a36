import FieldSyncCore
import FieldSyncProtocol
import Foundation
import Testing

/// Wire messages: round trips, version checks, bundle checksums, signatures and secrets.
@Suite struct ProtocolMessageTests {
    let node = NodeID("0123456789abcdef")!
    let key = DeviceKey.generate()

    func revision(_ counter: UInt64 = 1) throws -> Revision {
        try key.sign(
            Revision(
                dot: Dot(node: node, counter: counter), record: RecordID("01959a3c-7e00-7a00-8000-000000000001")!,
                operations: [.set(path: "title", value: "Raid"), .set(path: "casualties.killed", value: 3)],
                context: VersionVector(), author: "rima", time: 1_741_340_000_000))
    }

    @Test func messagesRoundTrip() throws {
        let knowledge = VersionVector([node: 3])
        #expect(
            try KnowledgeResponse(json: KnowledgeResponse(node: node, knowledge: knowledge).json)
                == KnowledgeResponse(node: node, knowledge: knowledge))
        let push = PushRequest(node: node, revisions: [try revision()])
        #expect(try PushRequest(json: push.json) == push)
        let pull = PullRequest(knowledge: knowledge, limit: 10)
        #expect(try PullRequest(json: pull.json) == pull)
        let page = PullResponse(revisions: [try revision()], more: true, knowledge: knowledge)
        #expect(try PullResponse(json: page.json) == page)
        let enrol = EnrolRequest(code: "abcde-fghij", node: node, publicKey: key.publicKeyBase64)
        #expect(try EnrolRequest(json: enrol.json) == enrol)
    }

    @Test(arguments: [
        (#"{"protocol":1,"knowledge":{}}"#, ProtocolError.Code.unsupportedVersion),
        (#"{"protocol":3,"knowledge":{}}"#, .unsupportedVersion),
        (#"{"knowledge":{}}"#, .malformed),
        (#"{"protocol":2,"knowledge":[]}"#, .malformed),
        (#"{"protocol":2,"knowledge":{},"limit":5000}"#, .malformed),
    ])
    func badPullRequestsAreRejected(text: String, code: ProtocolError.Code) throws {
        #expect { try PullRequest(json: JSONValue(parsing: text)) } throws: { ($0 as? ProtocolError)?.code == code }
    }

    @Test func pushBodySplicingMatchesTheEncoder() throws {
        let revisions = [try revision(1), try revision(2)]
        let spliced = PushBody.bytes(node: node, revisionTexts: revisions.map { $0.json.canonicalText })
        #expect(spliced == PushRequest(node: node, revisions: revisions).json.canonicalBytes)
    }

    @Test func aPipelinedPushBodyCarriesItsSequenceCanonically() throws {
        let revisions = [try revision(1), try revision(2)]
        let sequence = PushSequence(id: "00112233445566778899aabbccddeeff", batch: 7)
        let spliced = PushBody.bytes(node: node, revisionTexts: revisions.map { $0.json.canonicalText }, sequence: sequence)
        #expect(spliced == PushRequest(node: node, revisions: revisions, sequence: sequence).json.canonicalBytes)
        let parsed = try PushRequest(json: JSONValue.parseMessage(spliced))
        #expect(parsed.sequence == sequence)
        #expect(parsed.sequence?.next == PushSequence(id: sequence.id, batch: 8))
        let fresh = PushSequence.random()
        #expect(fresh.batch == 0 && fresh.id.utf8.count == 32 && fresh != PushSequence.random())
        #expect(try PushSequence(json: fresh.json) == fresh)
        for bad: JSONValue in [
            ["id": "short", "batch": 0], ["id": "00112233445566778899AABBCCDDEEFF", "batch": 0],
            ["id": .string(sequence.id), "batch": -1], ["id": .string(sequence.id)], "0011",
        ] {
            var body = PushRequest(node: node, revisions: revisions).json
            if case .object(var members) = body {
                members["sequence"] = bad
                body = .object(members)
            }
            #expect { try PushRequest(json: body) } throws: { ($0 as? ProtocolError)?.code == .malformed }
        }
    }

    /// A modified client enrols with a key of small order (the identity, or a point of order 2, 4
    /// or 8, in any encoding): anyone could forge its signatures, so the request is malformed.
    @Test func anEnrolRequestWithAKeyOfSmallOrderIsRefused() throws {
        let identity = [1] + [UInt8](repeating: 0, count: 31)
        let order4 = [UInt8](repeating: 0, count: 32)  // y = 0: x = ±√−1
        let order2 = [0xec] + [UInt8](repeating: 0xff, count: 30) + [0x7f]  // y = −1
        let order8 = [UInt8](Data(base64Encoded: "xxdqcD1N2E+6PAt2DRBnDyogU/osOczGTsf9d5KsA3o=")!)
        let identityYPlusP = [0xee] + [UInt8](repeating: 0xff, count: 30) + [0x7f]
        let identitySignBit = [1] + [UInt8](repeating: 0, count: 30) + [0x80]
        for bytes in [identity, order4, order2, order8, identityYPlusP, identitySignBit] {
            let text = Data(bytes).base64EncodedString()
            #expect(SignatureCheck.isPublicKey(text))
            #expect(SignatureCheck.isSmallOrderKey(text))
            let request = EnrolRequest(code: "abcde-fghij", node: node, publicKey: text).json
            #expect { try EnrolRequest(json: request) } throws: {
                ($0 as? ProtocolError)?.code == .malformed && "\($0)".contains("small order")
            }
        }
        #expect(!SignatureCheck.isSmallOrderKey(key.publicKeyBase64))
        #expect(
            try EnrolRequest(json: EnrolRequest(code: "abcde-fghij", node: node, publicKey: key.publicKeyBase64).json).publicKey
                == key.publicKeyBase64)
    }

    @Test func bundlesCarryAChecksumAndKeys() throws {
        let bundle = BundleFile(
            from: node, knowledge: VersionVector([node: 1]), revisions: [try revision()], created: 5,
            keys: [KeyEntry(node: node, publicKey: key.publicKeyBase64, user: "rima")])
        let bytes = bundle.fileBytes
        #expect(try BundleFile(fileBytes: bytes) == bundle)
        var altered = bytes
        let index = try #require(altered.firstIndex(of: UInt8(ascii: "3")))
        altered[index] = UInt8(ascii: "4")
        #expect { try BundleFile(fileBytes: altered) } throws: { ($0 as? ProtocolError)?.code == .checksumMismatch }
        #expect { try BundleFile(fileBytes: Array(bytes.prefix(bytes.count / 2))) } throws: { ($0 as? ProtocolError)?.code == .invalidJSON }
        #expect { try BundleFile(fileBytes: []) } throws: { $0 is ProtocolError }
    }

    @Test func signaturesCoverEveryMemberButSig() throws {
        let signed = try revision()
        let directory = KeyDirectory([KeyEntry(node: node, publicKey: key.publicKeyBase64)])
        try directory.verify(signed)
        var altered = signed
        altered.author = "someone else"
        #expect { try directory.verify(altered) } throws: { ($0 as? ProtocolError)?.code == .badSignature }
        var unsigned = signed
        unsigned.signature = nil
        #expect { try directory.verify(unsigned) } throws: { ($0 as? ProtocolError)?.code == .badSignature }
        #expect { try KeyDirectory().verify(signed) } throws: { ($0 as? ProtocolError)?.code == .unknownNode }
        let other = DeviceKey.generate()
        #expect(!SignatureCheck.isValid(signed, publicKeyBase64: other.publicKeyBase64))
    }

    @Test func secretsAreLongRandomAndHashed() {
        let codes = Set((0..<50).map { _ in Secrets.newEnrolmentCode() })
        #expect(codes.count == 50)
        #expect(codes.allSatisfy { $0.count == 47 && $0.split(separator: "-").count == 8 })
        let token = Secrets.newToken()
        #expect(token.count == 43)
        #expect(Secrets.hash(token).count == 64)
        #expect(Secrets.hash(token) != Secrets.hash(Secrets.newToken()))
        #expect(Secrets.normaliseCode(" ABCDE-fghij ") == "abcde-fghij")
    }
}

/// Signatures checked on all cores ahead of a transaction stand in for the check inside it only for
/// the same revision under the same key.
@Suite struct CheckedSignaturesTests {
    let node = NodeID("0123456789abcdef")!
    let key = DeviceKey.generate()

    func revisions(_ count: Int) throws -> [Revision] {
        try (1...count).map { counter in
            try key.sign(
                Revision(
                    dot: Dot(node: node, counter: UInt64(counter)), record: RecordID("01959a3c-7e00-7a00-8000-000000000001")!,
                    operations: [.set(path: "title", value: .string("Raid \(counter)"))],
                    context: VersionVector(), author: "rima", time: 1_741_340_000_000))
        }
    }

    @Test func checksEveryNewRevisionOnceAndSkipsKnownOnes() throws {
        let batch = try revisions(100)
        let directory = KeyDirectory([KeyEntry(node: node, publicKey: key.publicKeyBase64)])
        #expect(directory.checkSignatures(batch, skipping: VersionVector()).count == 100)
        #expect(directory.checkSignatures(batch, skipping: VersionVector([node: 40])).count == 60)
        #expect(KeyDirectory().checkSignatures(batch, skipping: VersionVector()).count == 0)
    }

    @Test func theAsyncCheckAgrees() async throws {
        let batch = try revisions(100)
        let directory = KeyDirectory([KeyEntry(node: node, publicKey: key.publicKeyBase64)])
        #expect(await directory.checkSignatures(batch, skipping: VersionVector([node: 90])).count == 10)
        var forged = batch
        forged[50].author = "someone else"
        #expect(await directory.checkSignatures(forged, skipping: VersionVector()).count == 99)
    }

    @Test func anAlteredOrDuplicatedRevisionIsVerifiedAgainAndRefused() throws {
        var batch = try revisions(3)
        let directory = KeyDirectory([KeyEntry(node: node, publicKey: key.publicKeyBase64)])
        let checked = directory.checkSignatures(batch, skipping: VersionVector())
        for revision in batch { try directory.verify(revision, checked: checked) }
        var altered = batch[1]
        altered.author = "someone else"
        #expect { try directory.verify(altered, checked: checked) } throws: { ($0 as? ProtocolError)?.code == .badSignature }
        // Two revisions with one dot in a batch are never checked ahead: the store decides.
        batch.append(altered)
        let again = directory.checkSignatures(batch, skipping: VersionVector())
        #expect(again.count == 2)
        #expect { try directory.verify(altered, checked: again) } throws: { ($0 as? ProtocolError)?.code == .badSignature }
    }

    @Test func aRevisionDifferingOnlyInUnicodeNormalisationIsNotTakenForTheCheckedOne() throws {
        var composed = try revisions(1)[0]
        composed.author = "Caf\u{E9}"
        composed = try key.sign(composed)
        var decomposed = composed
        decomposed.author = "Cafe\u{301}"
        #expect(composed == decomposed)  // Swift's == sees canonical equivalence...
        #expect(!composed.isIdentical(to: decomposed))  // ...the signed bytes differ.
        let directory = KeyDirectory([KeyEntry(node: node, publicKey: key.publicKeyBase64)])
        let checked = directory.checkSignatures([composed], skipping: VersionVector())
        #expect(checked.canonicalText(of: composed) != nil)
        #expect(checked.canonicalText(of: decomposed) == nil)
        #expect { try directory.verify(decomposed, checked: checked) } throws: { ($0 as? ProtocolError)?.code == .badSignature }
    }

    @Test func whatTheCheckComputesAheadIsWhatTheTransactionWouldCompute() throws {
        let good = try revisions(1)[0]
        // A modified client signs what the schema refuses with its own key: the signature verifies.
        let bad = try key.sign(
            Revision(
                dot: Dot(node: node, counter: 2), record: good.record, operations: [.set(path: "location.lat", value: 123.5)],
                context: VersionVector([node: 1]), author: "rima", time: 1_741_340_000_001,
                previous: RevisionChain.hash(ofText: good.canonicalForms.text)))
        let checked = KeyDirectory([KeyEntry(node: node, publicKey: key.publicKeyBase64)]).checkSignatures(
            [good, bad], skipping: VersionVector())
        #expect(checked.count == 2)
        let ahead = try #require(checked.ahead(of: good))
        #expect(ahead.text == good.canonicalForms.text)
        #expect(ahead.chainHash == RevisionChain.hash(ofText: good.canonicalForms.text))
        #expect(ahead.fitsSchema)
        #expect(checked.ahead(of: bad)?.fitsSchema == false)
        var altered = good
        altered.author = "someone else"
        #expect(checked.ahead(of: altered) == nil)
        // What the transaction takes: the same with or without the check ahead, and the schema's
        // refusal naming the revision either way.
        for given in [checked, CheckedSignatures.none] {
            let ready = try given.admissible(good)
            #expect(ready.text == ahead.text && ready.chainHash == ahead.chainHash)
            #expect { try given.admissible(bad) } throws: {
                ($0 as? ProtocolError)?.code == .invalidField && "\($0)".contains("\(node):2")
            }
        }
    }

    /// With 20 revisions of one node its key is tabulated (``Ed25519VerifyingKey``, from 8 on). A
    /// modified client, signing with its own key, adds the group order to `s` of a valid signature
    /// (the same scalar modulo the order, which a lax verifier accepts) and gives another
    /// revision a signature of its sibling's bytes: both are left out of the check and refused.
    @Test func aTabulatedKeyRefusesMalleatedAndMisplacedSignatures() async throws {
        var batch = try revisions(20)
        let text = try #require(batch[3].signature)
        var signature = [UInt8](try #require(Data(base64Encoded: text)))
        let order: [UInt8] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ]
        var carry = 0
        for index in 0..<32 {
            let sum = Int(signature[32 + index]) + Int(order[index]) + carry
            signature[32 + index] = UInt8(sum & 0xff)
            carry = sum >> 8
        }
        #expect(signature[63] & 0xe0 == 0)
        batch[3].signature = Data(signature).base64EncodedString()
        batch[7].signature = batch[8].signature
        let directory = KeyDirectory([KeyEntry(node: node, publicKey: key.publicKeyBase64)])
        // A synchronous context picks the overload that checks on Dispatch's threads.
        func onThreads() -> CheckedSignatures { directory.checkSignatures(batch, skipping: VersionVector()) }
        let checkedOnThreads = onThreads()
        let checkedInTasks = await directory.checkSignatures(batch, skipping: VersionVector())
        for checked in [checkedOnThreads, checkedInTasks] {
            #expect(checked.count == 18)
            for bad in [batch[3], batch[7]] {
                #expect(checked.canonicalText(of: bad) == nil)
                #expect { try directory.verify(bad, checked: checked) } throws: { ($0 as? ProtocolError)?.code == .badSignature }
            }
            for (index, good) in batch.enumerated() where index != 3 && index != 7 { #expect(checked.canonicalText(of: good) != nil) }
        }
    }

    /// `fieldsync verify` checks a log one revision at a time: from the fourth use of a key on,
    /// with the key tabulated, and with the same answers as `SignatureCheck` before and after.
    @Test func aSignatureCheckerAnswersAsSignatureCheckBeforeAndAfterTabulating() throws {
        var batch = try revisions(12)
        batch[2].author = "someone else"
        batch[9].author = "someone else"
        batch[10].signature = batch[11].signature
        var checker = SignatureChecker()
        let other = DeviceKey.generate().publicKeyBase64
        for (index, revision) in batch.enumerated() {
            let expected = ![2, 9, 10].contains(index)
            #expect(SignatureCheck.isValid(revision, publicKeyBase64: key.publicKeyBase64) == expected)
            let answer = checker.isValid(revision, publicKeyBase64: key.publicKeyBase64)
            #expect(answer == expected)
            let byOther = checker.isValid(revision, publicKeyBase64: other)
            #expect(!byOther)
        }
        let byNoKey = checker.isValid(batch[0], publicKeyBase64: "not a key")
        #expect(!byNoKey)
    }

    @Test func aKeyThatChangedSinceTheCheckMeansVerifyingAgain() throws {
        let batch = try revisions(2)
        let checked = KeyDirectory([KeyEntry(node: node, publicKey: key.publicKeyBase64)]).checkSignatures(batch, skipping: VersionVector())
        let other = KeyDirectory([KeyEntry(node: node, publicKey: DeviceKey.generate().publicKeyBase64)])
        #expect { try other.verify(batch[0], checked: checked) } throws: { ($0 as? ProtocolError)?.code == .badSignature }
        #expect { try KeyDirectory().verify(batch[0], checked: checked) } throws: { ($0 as? ProtocolError)?.code == .unknownNode }
    }
}

/// `parallelMap` keeps order and agrees with `map`, for arrays below and above its chunking threshold.
@Suite struct ParallelMapTests {
    @Test(arguments: [0, 1, 63, 64, 1000, 4099])
    func agreesWithMap(_ count: Int) {
        let items = (0..<count).map { "item \($0)" }
        #expect(items.parallelMap { $0.uppercased() + "!" } == items.map { $0.uppercased() + "!" })
        // Chunks of one element: more chunks than fit evenly must still cover every index once.
        #expect(items.parallelMap(minimumChunk: 1) { $0 + "?" } == items.map { $0 + "?" })
    }

    @Test func aBatchReportsItsFirstBadRevisionInOrder() throws {
        let key = DeviceKey.generate()
        let good = try key.sign(
            Revision(
                dot: Dot(node: NodeID("0123456789abcdef")!, counter: 1), record: RecordID("01959a3c-7e00-7a00-8000-000000000001")!,
                operations: [.set(path: "title", value: "Raid")], context: VersionVector(), author: "rima", time: 1))
        var items = Array(repeating: good.json, count: 300)
        items[120] = .object(["v": 1])
        items[250] = .string("not a revision")
        let body: JSONValue = ["protocol": 2, "node": "0123456789abcdef", "revisions": .array(items)]
        #expect { try PushRequest(json: body) } throws: { error in
            guard let error = error as? ProtocolError else { return false }
            return error.code == .malformed && error.message.contains("revisions[120]")
        }
    }
}
