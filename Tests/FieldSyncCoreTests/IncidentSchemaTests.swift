import Testing

@testable import FieldSyncCore

/// The incident schema: which paths exist, and which values each accepts. Errors name the path and the expected type.
@Suite struct IncidentSchemaTests {
    // MARK: Paths

    @Test(arguments: [
        ("title", IncidentSchema.PathKind.scalar(.nonEmptyText)),
        ("narrative", .scalar(.text)),
        ("occurred.start", .scalar(.edtfDate)),
        ("location.country", .scalar(.country)),
        ("location.lat", .scalar(.latitude)),
        ("location.lon", .scalar(.longitude)),
        ("casualties.killed", .scalar(.count)),
        ("status", .scalar(.oneOf(Vocabulary.status))),
        ("tags", .set(.nonEmptyText)),
        ("violations", .set(.oneOf(Vocabulary.violations))),
        ("victims", .collection),
        ("perpetrators", .collection),
        ("sources", .collection),
        ("custom.source", .scalar(.anyJSON)),
        ("victims.v1.sex", .scalar(.oneOf(Vocabulary.victimSex))),
        ("victims.3f2a9c1b0d4e.age_range", .scalar(.ageRange)),
        ("perpetrators.p-1.identification", .scalar(.oneOf(Vocabulary.identificationBasis))),
        ("sources.s1.reliability", .scalar(.oneOf(Vocabulary.reliability))),
    ])
    func knownPaths(_ path: String, _ kind: IncidentSchema.PathKind) throws {
        #expect(try IncidentSchema.kind(of: path) == kind)
    }

    @Test(arguments: [
        ("foo", "foo", "unknown field"),
        ("Title", "Title", "unknown field"),
        ("location", "location", "unknown field"),
        ("location.street", "location.street", "unknown field"),
        ("casualties", "casualties", "unknown field"),
        ("", "", "unknown field"),
        ("custom", "custom", "custom paths look like custom.KEY"),
        ("custom.", "custom.", "custom paths look like custom.KEY"),
        ("custom..x", "custom..x", "custom paths look like custom.KEY"),
        ("custom.x.", "custom.x.", "custom paths look like custom.KEY"),
        ("custom.a.b", "custom.a.b", "custom paths look like custom.KEY (one level"),
        ("victims.V1.sex", "victims.V1.sex", "entry ids are 1 to 64 characters of a-z, 0-9 and -"),
        ("victims..sex", "victims..sex", "entry ids are 1 to 64 characters"),
        ("victims.v_1.sex", "victims.v_1.sex", "entry ids are 1 to 64 characters"),
        ("victims.v1.height", "victims.v1.height", "unknown field; victims entries have age_range, pseudonym, sex, status"),
        ("victims.v1.name.x", "victims.v1.name.x", "unknown field"),
        ("victims.v1.sex.x", "victims.v1.sex.x", "unknown field"),
        ("sources.s1.name", "sources.s1.name", "sources entries have description, kind, reliability"),
    ])
    func unknownPaths(_ path: String, _ errorPath: String, _ message: String) {
        let error = #expect(throws: ValidationError.self) { try IncidentSchema.kind(of: path) }
        #expect(error?.path == errorPath)
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
    }

    @Test func entryIDsUpTo64Characters() throws {
        let longest = String(repeating: "a", count: 64)
        #expect(try IncidentSchema.kind(of: "victims.\(longest).sex") == .scalar(.oneOf(Vocabulary.victimSex)))
        #expect(throws: ValidationError.self) { try IncidentSchema.kind(of: "victims.\(longest)a.sex") }
        #expect(IncidentSchema.isEntryID("0-a"))
        #expect(!IncidentSchema.isEntryID(""))
        #expect(!IncidentSchema.isEntryID("é"))
    }

    @Test func overlongPathsAreRejected() {
        let path = "custom." + String(repeating: "k", count: IncidentSchema.maximumPathLength)
        let error = #expect(throws: ValidationError.self) { try IncidentSchema.kind(of: path) }
        #expect(error?.message == "path too long")
        #expect(error?.path.hasPrefix("custom.kkk") == true)
        let fits = "custom." + String(repeating: "k", count: IncidentSchema.maximumPathLength - 7)
        #expect(throws: Never.self) { try IncidentSchema.kind(of: fits) }
    }

    // MARK: Values

    @Test(arguments: [
        FieldOperation.set(path: "title", value: "Shelling"),
        .set(path: "narrative", value: ""),
        .unset(path: "narrative"),
        .set(path: "occurred.start", value: "2025-03-07"),
        .set(path: "occurred.end", value: "2025-03-06/2025-03-08"),
        .set(path: "occurred.start", value: "2025-03~"),
        .set(path: "location.country", value: "SY"),
        .set(path: "location.lat", value: 36.2),
        .set(path: "location.lat", value: -90),
        .set(path: "location.lon", value: 180),
        .set(path: "location.lon", value: -179.5),
        .set(path: "casualties.killed", value: 0),
        .set(path: "casualties.injured", value: 12),
        .set(path: "status", value: "verified"),
        .add(path: "tags", element: "urgent"),
        .remove(path: "tags", element: "urgent"),
        .add(path: "violations", element: "torture"),
        .set(path: "custom.source", value: ["url": "x", "n": [1, 2]]),
        .set(path: "custom.flag", value: false),
        .set(path: "victims.v1.age_range", value: "18-30"),
        .set(path: "victims.v1.age_range", value: "60+"),
        .set(path: "victims.v1.age_range", value: "0-0"),
        .set(path: "victims.v1.age_range", value: "child"),
        .set(path: "victims.v1.sex", value: "female"),
        .set(path: "perpetrators.p1.name", value: "Unit 4"),
        .set(path: "sources.s1.kind", value: "witness"),
        .unset(path: "victims.v1.pseudonym"),
    ])
    func acceptsValidOperations(_ operation: FieldOperation) {
        #expect(throws: Never.self) { try IncidentSchema.validate(operation) }
    }

    @Test(arguments: [
        (FieldOperation.set(path: "title", value: ""), "title", "expected a non-empty string, got string \"\""),
        (.set(path: "title", value: "  \n"), "title", "expected a non-empty string"),
        (.set(path: "title", value: 5), "title", "expected a non-empty string, got number 5"),
        (.set(path: "title", value: .null), "title", "expected a non-empty string, got null null"),
        (.unset(path: "title"), "title", "is required and cannot be cleared"),
        (.set(path: "narrative", value: ["a"]), "narrative", "expected a string, got array [\"a\"]"),
        (.set(path: "narrative", value: .string(String(repeating: "x", count: 100_001))), "narrative", "text longer than 100000 bytes"),
        (.set(path: "occurred.start", value: "2025-13"), "occurred.start", "month 13 is out of range (an EDTF date such as"),
        (.set(path: "occurred.start", value: "07/03/2025"), "occurred.start", "an EDTF date such as 2025-03-07"),
        (.set(path: "occurred.end", value: 2025), "occurred.end", "expected an EDTF date"),
        (.set(path: "location.country", value: "sy"), "location.country", "expected an ISO 3166-1 alpha-2 country code"),
        (.set(path: "location.country", value: "UK"), "location.country", "got string \"UK\""),
        (.set(path: "location.lat", value: 90.5), "location.lat", "expected a number from -90 to 90, got number 90.5"),
        (.set(path: "location.lat", value: "36.2"), "location.lat", "expected a number from -90 to 90"),
        (.set(path: "location.lon", value: -181), "location.lon", "expected a number from -180 to 180"),
        (.set(path: "casualties.killed", value: -1), "casualties.killed", "expected a non-negative integer, got number -1"),
        (.set(path: "casualties.killed", value: 1.5), "casualties.killed", "expected a non-negative integer"),
        (.set(path: "casualties.killed", value: "3"), "casualties.killed", "expected a non-negative integer, got string \"3\""),
        (.set(path: "status", value: "open"), "status", "expected one of draft, submitted, verified, rejected"),
        (.add(path: "tags", element: ""), "tags", "expected a non-empty string"),
        (.add(path: "tags", element: " "), "tags", "expected a non-empty string"),
        (.add(path: "violations", element: "theft"), "violations", "expected one of killing, summary-execution"),
        (.remove(path: "violations", element: "Torture"), "violations", "expected one of"),
        (.set(path: "tags", value: ["a"]), "tags", "is a set of strings: change it with tags+=VALUE or tags-=VALUE"),
        (.unset(path: "violations"), "violations", "is a set of strings"),
        (.set(path: "victims", value: [["sex": "male"]]), "victims", "is a collection: add an entry with victims+={...}"),
        (.unset(path: "sources"), "sources", "is a collection"),
        (.add(path: "title", element: "x"), "title", "is not a set: use title=VALUE"),
        (.remove(path: "custom.list", element: "x"), "custom.list", "is not a set"),
        (.set(path: "custom.x", value: .null), "custom.x", "null is not a value; clear the field with --unset custom.x"),
        (.set(path: "victims.v1.age_range", value: "30-18"), "victims.v1.age_range", "expected an age range such as 18-30"),
        (.set(path: "victims.v1.age_range", value: "131+"), "victims.v1.age_range", "expected an age range"),
        (.set(path: "victims.v1.age_range", value: "10-131"), "victims.v1.age_range", "expected an age range"),
        (.set(path: "victims.v1.age_range", value: "-5-10"), "victims.v1.age_range", "expected an age range"),
        (.set(path: "victims.v1.age_range", value: 30), "victims.v1.age_range", "expected an age range"),
        (.set(path: "victims.v1.sex", value: "f"), "victims.v1.sex", "expected one of female, male, other, unknown"),
        (.set(path: "sources.s1.reliability", value: "certain"), "sources.s1.reliability", "expected one of high, medium, low, unknown"),
        (.set(path: "nonsense", value: 1), "nonsense", "unknown field"),
    ])
    func rejectsInvalidOperations(_ operation: FieldOperation, _ path: String, _ message: String) {
        let error = #expect(throws: ValidationError.self) { try IncidentSchema.validate(operation) }
        #expect(error?.path == path)
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "no error")")
        #expect(error?.description == "\(path): \(error?.message ?? "")")
    }

    @Test func longValuesAreAbbreviatedInMessages() {
        let long = String(repeating: "z", count: 100)
        let error = #expect(throws: ValidationError.self) {
            try IncidentSchema.validate(.set(path: "status", value: .string(long)))
        }
        #expect(error?.message.hasSuffix("…") == true)
        #expect((error?.message.count ?? 1000) < 140)
    }

    @Test func everyFieldTypeNamesItsExpectation() {
        let types: [IncidentSchema.FieldType] = [
            .text, .nonEmptyText, .edtfDate, .country, .latitude, .longitude, .count, .anyJSON, .ageRange, .oneOf(["x", "y"]),
        ]
        #expect(Set(types.map(\.expectation)).count == types.count)
        #expect(IncidentSchema.FieldType.oneOf(["x", "y"]).expectation == "one of x, y")
    }
}
