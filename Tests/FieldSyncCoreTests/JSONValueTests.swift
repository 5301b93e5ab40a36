import FieldSyncSeededRandom
import PropertyBased
import Testing

@testable import FieldSyncCore

/// The JSON parser and canonical encoder: one byte form per value, and hostile input rejected.
@Suite struct JSONValueTests {
    // MARK: Parsing and canonical text

    @Test(arguments: [
        ("  {\"b\" : [1, 2.5, true, false, null], \"a\": \"x\"}  ", "{\"a\":\"x\",\"b\":[1,2.5,true,false,null]}"),
        ("[ ]", "[]"),
        ("{ }", "{}"),
        ("\n\t\r 0 ", "0"),
        ("\"\"", "\"\""),
        ("[[[]],{\"k\":{}}]", "[[[]],{\"k\":{}}]"),
        ("{\"aa\":1,\"B\":2,\"a\":3,\"\":4,\"é\":5}", "{\"\":4,\"B\":2,\"a\":3,\"aa\":1,\"é\":5}"),
        // Keys sort by UTF-8 bytes: U+FF61 (EF BD A1) before U+1F600 (F0 9F 98 80), unlike UTF-16 order.
        ("{\"😀\":1,\"｡\":2}", "{\"｡\":2,\"😀\":1}"),
    ])
    func parsesToCanonicalText(_ input: String, _ canonical: String) throws {
        let value = try JSONValue(parsing: input)
        #expect(value.canonicalText == canonical)
        #expect(value.canonicalBytes == Array(canonical.utf8))
        #expect(try JSONValue(parsing: canonical) == value)
    }

    @Test func parsesEveryKind() throws {
        let value = try JSONValue(parsing: #"{"n":null,"t":true,"f":false,"i":-7,"d":0.25,"s":"x","a":[1],"o":{"k":"v"}}"#)
        #expect(
            value
                == .object([
                    "n": .null, "t": .bool(true), "f": .bool(false), "i": .int(-7), "d": .double(0.25), "s": .string("x"),
                    "a": .array([.int(1)]), "o": .object(["k": .string("v")]),
                ]))
        #expect(value["i"]?.intValue == -7)
        #expect(value["d"]?.numberValue == 0.25)
        #expect(value["i"]?.numberValue == -7)
        #expect(value["s"]?.stringValue == "x")
        #expect(value["t"]?.boolValue == true)
        #expect(value["a"]?.arrayValue == [.int(1)])
        #expect(value["o"]?.objectValue == ["k": .string("v")])
        #expect(value["missing"] == nil)
        #expect(JSONValue.int(1)["k"] == nil)
        #expect(value["n"]?.typeName == "null")
        #expect(value["d"]?.typeName == "number")
    }

    // MARK: Number normalisation

    @Test(arguments: [
        ("0", JSONValue.int(0)),
        ("-0", .int(0)),
        ("-0.0", .int(0)),
        ("1.0", .int(1)),
        ("1.000", .int(1)),
        ("1e2", .int(100)),
        ("1E+2", .int(100)),
        ("0.5e1", .int(5)),
        ("2500e-2", .int(25)),
        ("-42", .int(-42)),
        ("9007199254740992", .int(9_007_199_254_740_992)),
        ("-9007199254740992", .int(-9_007_199_254_740_992)),
        ("9007199254740992.0", .int(9_007_199_254_740_992)),
        ("1.5", .double(1.5)),
        ("-1.25E-2", .double(-0.0125)),
        ("1e-400", .int(0)),
        ("9007199254740994.0", .double(9_007_199_254_740_994)),
        ("1.23456789012345678e17", .double(123_456_789_012_345_678)),
        ("1e300", .double(1e300)),
    ])
    func normalisesNumbers(_ text: String, _ expected: JSONValue) throws {
        let value = try JSONValue(parsing: text)
        #expect(value == expected)
        // The canonical text reads back as the same value.
        #expect(try JSONValue(parsing: value.canonicalText) == value)
    }

    /// Integers beyond 2^53 cannot be exchanged exactly, so they are refused rather than rounded.
    @Test(arguments: [
        "9007199254740993", "-9007199254740993", "123456789012345678", "9223372036854775807", "-9223372036854775807",
        "18446744073709551616", "-9223372036854775809", "[1,99999999999999999999]",
        // Int64.min parses as an Int64, so the range check must not overflow on it.
        "-9223372036854775808",
    ])
    func integersBeyond53BitsAreRejected(_ text: String) {
        let error = #expect(throws: JSONParseError.self) { try JSONValue(parsing: text) }
        #expect(error?.reason == "integer out of range (more than 2^53 in magnitude)")
    }

    @Test(arguments: [
        (JSONValue.int(100), "100"),
        (.int(-3), "-3"),
        (.double(2.5), "2.5"),
        (.double(0.1), "0.1"),
        (.double(-0.0125), "-0.0125"),
        (.double(1e300), "1e+300"),
        (.double(5.0), "5"),  // an unnormalised integral double still has the integer form
        (.double(-0.0), "0"),
        (.number(3.0), "3"),
        (1.5, "1.5"),
        (2.0, "2"),
    ])
    func canonicalNumbers(_ value: JSONValue, _ text: String) {
        #expect(value.canonicalText == text)
    }

    @Test func numberNormalisesIntegralDoubles() {
        #expect(JSONValue.number(4.0) == .int(4))
        #expect(JSONValue.number(-0.0) == .int(0))
        #expect(JSONValue.number(4.5) == .double(4.5))
        #expect(JSONValue.number(1e20) == .double(1e20))
        #expect(JSONValue(floatLiteral: 7.0) == .int(7))
    }

    // MARK: Strings and escapes

    @Test func decodesEveryEscape() throws {
        let value = try JSONValue(parsing: #""\"\\\/\b\f\n\r\t\u0041\u00e9\u20AC\ud83d\ude00\u0000""#)
        #expect(value == .string("\"\\/\u{8}\u{C}\n\r\tAé€😀\u{0}"))
    }

    @Test func escapesAfterPlainTextKeepThePrefix() throws {
        #expect(try JSONValue(parsing: #""abc\ndef""#) == .string("abc\ndef"))
        #expect(try JSONValue(parsing: #""é\u00e9é""#) == .string("ééé"))
    }

    @Test(arguments: [
        ("\"\\/", #""\"\\/""#),
        ("line\nfeed\ttab\rcr\u{8}bs\u{C}ff", #""line\nfeed\ttab\rcr\bbs\fff""#),
        ("\u{0}\u{1}\u{1F}", #""\u0000\u0001\u001f""#),
        ("\u{7F}é😀\u{2028}/", "\"\u{7F}é😀\u{2028}/\""),
    ])
    func canonicalStringEscapes(_ string: String, _ text: String) throws {
        #expect(JSONValue.string(string).canonicalBytes == Array(text.utf8))
        #expect(try JSONValue(parsing: text) == .string(string))
    }

    @Test func prettyTextParsesBack() throws {
        let value = try JSONValue(parsing: #"{"b":[1,{"c":[]},"x"],"a":{},"d":{"e":null}}"#)
        let pretty = value.prettyText()
        #expect(pretty.contains("\n"))
        #expect(try JSONValue(parsing: pretty) == value)
        #expect(pretty.firstRange(of: "\"a\"")!.lowerBound < pretty.firstRange(of: "\"b\"")!.lowerBound)
    }

    // MARK: Rejected input

    @Test(
        arguments: [
            [0x22, 0xFF, 0x22],  // 0xFF is never UTF-8
            [0x22, 0xC0, 0xAF, 0x22],  // overlong "/"
            [0x22, 0xE2, 0x82, 0x22],  // truncated 3-byte sequence
            [0x22, 0xED, 0xA0, 0x80, 0x22],  // an encoded surrogate (U+D800)
            [0x22, 0x5C, 0x6E, 0x80, 0x22],  // a lone continuation byte after an escape
            [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],  // beyond U+10FFFF
            [0x7B, 0x22, 0xFE, 0x22, 0x3A, 0x31, 0x7D],  // in a key
            [0xFF],
            [0xEF, 0xBB, 0xBF, 0x31],  // a byte-order mark is not whitespace
        ] as [[UInt8]])
    func rejectsInvalidUTF8(_ bytes: [UInt8]) {
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: bytes) }
    }

    @Test(arguments: [
        "{} x", "1 2", "[1]]", "{}}", "nulll", "truex", "\"a\"\"b\"", "0 0", "01", "00", "-01", "[1] ,", "1\u{0}",
    ])
    func rejectsTrailingGarbage(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: text) }
    }

    @Test func trailingGarbageNamesItsOffset() {
        let error = #expect(throws: JSONParseError.self) { try JSONValue(parsing: "{}  x") }
        #expect(error?.offset == 4)
        #expect(error?.reason == "unexpected data after the JSON value")
        #expect(error?.description == "invalid JSON at byte 4: unexpected data after the JSON value")
    }

    @Test(arguments: [
        #"{"a":1,"a":2}"#,
        #"{"a":1,"b":2,"a":1}"#,
        #"{"a":1,"\u0061":2}"#,  // the same key, once escaped
        #"{"x":{"k":null,"k":null}}"#,
        #"[{"é":1,"\u00e9":1}]"#,
    ])
    func rejectsDuplicateKeys(_ text: String) {
        let error = #expect(throws: JSONParseError.self) { try JSONValue(parsing: text) }
        #expect(error?.reason.hasPrefix("duplicate key") == true)
    }

    @Test func acceptsNestingTo64AndRejectsDeeper() throws {
        let maxArrays = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(throws: Never.self) { try JSONValue(parsing: maxArrays) }
        let maxObjects = String(repeating: "{\"k\":", count: 63) + "[]" + String(repeating: "}", count: 63)
        #expect(throws: Never.self) { try JSONValue(parsing: maxObjects) }

        for deep in [
            String(repeating: "[", count: 65) + String(repeating: "]", count: 65),
            String(repeating: "{\"k\":", count: 65) + "1" + String(repeating: "}", count: 65),
            String(repeating: "[{\"k\":", count: 33) + "0" + String(repeating: "}]", count: 33),
            String(repeating: "[", count: 100_000),  // must fail fast, not exhaust the stack
        ] {
            let error = #expect(throws: JSONParseError.self) { try JSONValue(parsing: deep) }
            #expect(error?.reason == "nesting deeper than 64 levels")
        }
        #expect(JSONValue.maximumDepth == 64)
    }

    @Test func depthIsPerPathNotCumulative() throws {
        // 64 levels, closed, then 64 levels again as a sibling: never deeper than 64.
        let level64 = String(repeating: "[", count: 63) + String(repeating: "]", count: 63)
        #expect(throws: Never.self) { try JSONValue(parsing: "[" + level64 + "," + level64 + "]") }
    }

    @Test(arguments: [
        "\"abc", "\"abc\\", "\"abc\\\"", "\"", "{\"a", "{\"a\":\"b", "[\"x", "\"\\u00e9", "\"é",
    ])
    func rejectsUnterminatedStrings(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: text) }
    }

    @Test(arguments: [
        #""\ud800""#, #""\udc00""#, #""\ud800x""#, #""\ud800\u0041""#, #""\ud800\ud800""#, #""\udfff\ud800""#,
        #""a\uDBFF""#, #""\ud83d\n""#,
    ])
    func rejectsLoneSurrogates(_ text: String) {
        let error = #expect(throws: JSONParseError.self) { try JSONValue(parsing: text) }
        #expect(error?.reason == "unpaired surrogate")
    }

    @Test(arguments: [
        "", " ", "[", "]", "{", "}", "[1,]", "[,1]", "{\"a\":1,}", "{\"a\"}", "{\"a\" 1}", "{a:1}", "{1:1}", "'a'",
        "tru", "nul", "True", "NaN", "Infinity", "-Infinity", "+1", ".5", "1.", "1.e2", "1e", "1e+", "-", "--1", "0x10",
        "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"", "\"\\U0041\"", "\"a\nb\"", "\"a\tb\"", "\"\u{1F}\"", "1e400", "-1e400",
        "[1 2]", "{\"a\":1 \"b\":2}",
    ])
    func rejectsMalformed(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: text) }
    }

    @Test func errorOffsetsPointAtTheProblem() {
        let trailingComma = #expect(throws: JSONParseError.self) { try JSONValue(parsing: "[1,]") }
        #expect(trailingComma?.offset == 3)
        let empty = #expect(throws: JSONParseError.self) { try JSONValue(parsing: "") }
        #expect(empty?.offset == 0)
        #expect(empty?.reason == "unexpected end of input")
        let huge = #expect(throws: JSONParseError.self) { try JSONValue(parsing: "[1e999]") }
        #expect(huge?.reason == "number out of range")
        #expect(huge?.offset == 1)
        let control = #expect(throws: JSONParseError.self) { try JSONValue(parsing: "\"ab\u{1}\"") }
        #expect(control?.offset == 3)
        #expect(control?.reason == "control character in string")
    }

    // MARK: Properties

    /// Canonical text, canonical bytes and pretty text all parse back to the value; canonical text is a fixed point.
    @Test func canonicalRoundTripProperty() async {
        await propertyCheck(count: 200, input: Gen.uint64()) { seed in
            var rng = SplitMix64(seed: seed)
            let value = RandomJSON.value(depth: 0, using: &rng)
            let text = value.canonicalText
            let parsed = try JSONValue(parsing: text)
            #expect(parsed == value, "\(text)")
            #expect(parsed.canonicalBytes == Array(text.utf8))
            #expect(try JSONValue(parsing: value.canonicalBytes) == value)
            #expect(value.canonicalBytes == Array(text.utf8))
            #expect(try JSONValue(parsing: value.prettyText()) == value)
        }
    }

    /// Equal values have equal canonical text, whatever order their object members were written in.
    @Test func canonicalTextIgnoresMemberOrderProperty() async {
        await propertyCheck(count: 150, input: Gen.uint64()) { seed in
            var rng = SplitMix64(seed: seed)
            let keys = (0..<Int.random(in: 1...8, using: &rng)).map { _ in RandomJSON.string(using: &rng) }
            let members = Dictionary(keys.map { ($0, RandomJSON.value(depth: 2, using: &rng)) }, uniquingKeysWith: { a, _ in a })
            let orderA = members.keys.shuffled(using: &rng)
            let orderB = members.keys.shuffled(using: &rng)
            func text(_ order: [String]) -> String {
                "{" + order.map { JSONValue.string($0).canonicalText + " : " + members[$0]!.prettyText() }.joined(separator: " ,\n") + "}"
            }
            let a = try JSONValue(parsing: text(orderA))
            let b = try JSONValue(parsing: text(orderB))
            #expect(a == b)
            #expect(a.canonicalBytes == b.canonicalBytes)
            let sortedKeys = JSONValue.sortedKeys(members)
            #expect(zip(sortedKeys, sortedKeys.dropFirst()).allSatisfy { JSONValue.utf8Less($0, $1) })
        }
    }
}

/// Random JSON values whose numbers are already normalised, as the parser would produce them.
enum RandomJSON {
    static let scalars: [Unicode.Scalar] = [
        "a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\r", "\u{0}", "\u{1}", "\u{1F}", "\u{7F}", "é", "€", "｡",
        "\u{2028}", "😀", "𝄞", "\u{FEFF}",
    ]

    static func string<R: RandomNumberGenerator>(using rng: inout R) -> String {
        var s = String.UnicodeScalarView()
        for _ in 0..<Int.random(in: 0...6, using: &rng) { s.append(scalars.randomElement(using: &rng)!) }
        return String(s)
    }

    static func number<R: RandomNumberGenerator>(using rng: inout R) -> JSONValue {
        switch Int.random(in: 0..<6, using: &rng) {
        case 0: return .int(Int64.random(in: -9_007_199_254_740_992...9_007_199_254_740_992, using: &rng))
        case 1: return .int(Int64.random(in: -1000...1000, using: &rng))
        case 2: return .number(Double.random(in: -1e6...1e6, using: &rng))
        case 3: return .number(Double.random(in: -1...1, using: &rng) * 1e-300)
        case 4: return .number(Double.random(in: 1e16...1e300, using: &rng))
        default: return .number(Double(Int.random(in: -100...100, using: &rng)) / 8)
        }
    }

    static func value<R: RandomNumberGenerator>(depth: Int, using rng: inout R) -> JSONValue {
        let choice = Int.random(in: 0..<(depth >= 4 ? 5 : 7), using: &rng)
        switch choice {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &rng))
        case 2, 3: return number(using: &rng)
        case 4: return .string(string(using: &rng))
        case 5: return .array((0..<Int.random(in: 0...4, using: &rng)).map { _ in value(depth: depth + 1, using: &rng) })
        default:
            var object: [String: JSONValue] = [:]
            for _ in 0..<Int.random(in: 0...4, using: &rng) { object[string(using: &rng)] = value(depth: depth + 1, using: &rng) }
            return .object(object)
        }
    }
}
