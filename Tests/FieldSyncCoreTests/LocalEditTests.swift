import Testing

@testable import FieldSyncCore

/// `--set` parsing, turning requested changes into operations against the current record, and incident documents.
@Suite struct LocalEditTests {
    // MARK: FieldChange.parse

    @Test(arguments: [
        ("title=Shelling of the market", FieldChange.set(path: "title", value: "Shelling of the market")),
        ("casualties.killed=3", .set(path: "casualties.killed", value: 3)),
        ("location.lat=36.2", .set(path: "location.lat", value: 36.2)),
        ("narrative=\"quoted\"", .set(path: "narrative", value: "quoted")),
        ("narrative=", .set(path: "narrative", value: "")),
        ("narrative=a=b", .set(path: "narrative", value: "a=b")),
        ("narrative={not json", .set(path: "narrative", value: "{not json")),
        // Text fields take exactly the text typed, even when it reads as another JSON type.
        ("narrative=null", .set(path: "narrative", value: "null")),
        ("title=2025", .set(path: "title", value: "2025")),
        ("narrative=1.50", .set(path: "narrative", value: "1.50")),
        ("occurred.start=2025", .set(path: "occurred.start", value: "2025")),
        ("location.place=[1]", .set(path: "location.place", value: "[1]")),
        ("casualties.killed=1.50", .set(path: "casualties.killed", value: 1.5)),
        ("custom.n=2025", .set(path: "custom.n", value: 2025)),
        ("title==x", .set(path: "title", value: "=x")),
        ("custom.flag=true", .set(path: "custom.flag", value: true)),
        ("custom.source={\"url\":\"x\",\"n\":[1]}", .set(path: "custom.source", value: ["url": "x", "n": [1]])),
        ("tags=[\"a\",\"b\"]", .set(path: "tags", value: ["a", "b"])),
        ("tags+=urgent", .add(path: "tags", element: "urgent")),
        ("tags+=2025", .add(path: "tags", element: "2025")),
        ("tags-=urgent", .remove(path: "tags", element: "urgent")),
        ("tags+=needs review", .add(path: "tags", element: "needs review")),
        ("violations+=torture", .add(path: "violations", element: "torture")),
        (
            "victims+={\"pseudonym\":\"V-12\",\"sex\":\"female\"}",
            .addEntry(collection: "victims", fields: ["pseudonym": "V-12", "sex": "female"])
        ),
        ("sources+={\"kind\":\"witness\"}", .addEntry(collection: "sources", fields: ["kind": "witness"])),
        ("victims-=3f2a9c1b0d4e", .removeEntry(collection: "victims", entry: "3f2a9c1b0d4e")),
        ("victims.v1.sex=male", .set(path: "victims.v1.sex", value: "male")),
    ])
    func parsesAssignments(_ text: String, _ expected: FieldChange) throws {
        #expect(try FieldChange.parse(assignment: text) == expected)
    }

    @Test(arguments: [
        ("no equals sign", "no equals sign", "expected PATH=VALUE, PATH+=VALUE or PATH-=VALUE"),
        ("=value", "=value", "missing PATH before ="),
        ("+=value", "+=value", "missing PATH before ="),
        ("foo=1", "foo", "unknown field"),
        ("custom=1", "custom", "custom paths look like"),
        ("title+=x", "title", "+= and -= apply to set fields (tags, violations) and collections"),
        ("narrative-=x", "narrative", "+= and -= apply to set fields"),
        ("victims+=notjson", "victims", "expected a JSON object for the new entry"),
        ("victims+=[{\"sex\":\"male\"}]", "victims", "expected a JSON object for the new entry"),
        ("victims.V1.sex=male", "victims.V1.sex", "entry ids are"),
    ])
    func rejectsBadAssignments(_ text: String, _ path: String, _ message: String) {
        let error = #expect(throws: ValidationError.self) { try FieldChange.parse(assignment: text) }
        #expect(error?.path == path)
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "no error")")
    }

    // MARK: LocalEdit.operations

    /// A record built by applying puts in order, each seeing the previous.
    func record(_ operations: [FieldOperation]...) -> RecordState {
        var state = RecordState(id: Fixture.record)
        for (i, ops) in operations.enumerated() {
            state.apply(Fixture.revision(Fixture.nodeA, UInt64(i + 1), ops, context: state.version))
        }
        return state
    }

    func operations(_ changes: [FieldChange], current: RecordState?, ids: [String] = ["e1", "e2", "e3"]) throws(ValidationError)
        -> [FieldOperation]
    {
        var remaining = ids
        return try LocalEdit.operations(for: changes, current: current, newEntryID: { remaining.removeFirst() })
    }

    func parsed(_ assignments: String...) throws -> [FieldChange] {
        try assignments.map { text throws(ValidationError) in try FieldChange.parse(assignment: text) }
    }

    @Test func titleIsRequiredForANewRecord() throws {
        let error = #expect(throws: ValidationError.self) {
            try operations(parsed("narrative=x"), current: nil)
        }
        #expect(error?.path == "title")
        #expect(error?.message == "is required: give --title or set title")
        #expect(throws: ValidationError.self) { try operations([], current: nil) }
        #expect(throws: ValidationError.self) { try operations(parsed("tags+=a"), current: RecordState(id: Fixture.record)) }
        #expect(try operations(parsed("title=First"), current: nil) == [.set(path: "title", value: "First")])
    }

    @Test func titleIsNotRequiredOnceTheRecordHasOne() throws {
        let current = record([.set(path: "title", value: "T")])
        #expect(try operations(parsed("narrative=x"), current: current) == [.set(path: "narrative", value: "x")])
        #expect(try operations([], current: current) == [])
    }

    @Test func textFieldsCoerceScalars() throws {
        let ops = try operations(parsed("title=2025", "narrative=true", "location.place=1.5", "occurred.start=2025"), current: nil)
        #expect(
            ops == [
                .set(path: "title", value: "2025"), .set(path: "narrative", value: "true"),
                .set(path: "location.place", value: "1.5"), .set(path: "occurred.start", value: "2025"),
            ])
        // Values that arrive typed (from a document) are coerced the same way.
        #expect(
            try operations([.set(path: "title", value: 2025), .set(path: "narrative", value: false)], current: nil) == [
                .set(path: "title", value: "2025"), .set(path: "narrative", value: "false"),
            ])
        // A count stays a number, and custom values keep their JSON type.
        let current = record([.set(path: "title", value: "T")])
        #expect(
            try operations(parsed("casualties.killed=3", "custom.n=3"), current: current) == [
                .set(path: "casualties.killed", value: 3), .set(path: "custom.n", value: 3),
            ])
    }

    @Test func invalidValuesNameThePathAndExpectedType() {
        let current = record([.set(path: "title", value: "T")])
        let cases: [(String, String, String)] = [
            ("casualties.killed=many", "casualties.killed", "expected a non-negative integer, got string \"many\""),
            ("status=open", "status", "expected one of draft, submitted, verified, rejected"),
            ("location.country=Syria", "location.country", "expected an ISO 3166-1 alpha-2 country code"),
            ("occurred.start=yesterday", "occurred.start", "EDTF"),
            ("title=", "title", "expected a non-empty string"),
            ("violations+=theft", "violations", "expected one of killing"),
            ("tags+=", "tags", "expected a non-empty string"),
            ("custom.x=null", "custom.x", "null is not a value"),
        ]
        for (assignment, path, message) in cases {
            let error = #expect(throws: ValidationError.self, "\(assignment)") {
                try operations(parsed(assignment), current: current)
            }
            #expect(error?.path == path, "\(assignment)")
            #expect(error?.message.contains(message) == true, "\(assignment): \(error?.message ?? "no error")")
        }
    }

    @Test func unsetTitleIsRejected() {
        let current = record([.set(path: "title", value: "T")])
        let error = #expect(throws: ValidationError.self) { try operations([.unset(path: "title")], current: current) }
        #expect(error?.path == "title")
        #expect(error?.message == "is required and cannot be cleared")
    }

    @Test func setAddAndRemoveElements() throws {
        let current = record([.set(path: "title", value: "T"), .add(path: "tags", element: "old")])
        #expect(
            try operations(parsed("tags+=new", "tags-=old"), current: current) == [
                .add(path: "tags", element: "new"), .remove(path: "tags", element: "old"),
            ])
        // Adding a present element is allowed (it re-asserts membership); removing an absent one is not.
        #expect(try operations(parsed("tags+=old"), current: current) == [.add(path: "tags", element: "old")])
        let error = #expect(throws: ValidationError.self) { try operations(parsed("tags-=missing"), current: current) }
        #expect(error?.path == "tags")
        #expect(error?.message == "\"missing\" is not in the set")
        #expect(throws: ValidationError.self) { try operations(parsed("title=T", "tags-=x"), current: nil) }
    }

    @Test func anArrayReplacesTheSet() throws {
        let current = record([.set(path: "title", value: "T"), .add(path: "tags", element: "b"), .add(path: "tags", element: "c")])
        #expect(current.elements(of: "tags") == ["b", "c"])
        #expect(
            try operations(parsed(#"tags=["a","b"]"#), current: current) == [
                .add(path: "tags", element: "a"), .remove(path: "tags", element: "c"),
            ])
        #expect(
            try operations(parsed("tags=[]"), current: current) == [
                .remove(path: "tags", element: "b"), .remove(path: "tags", element: "c"),
            ])
        #expect(try operations(parsed(#"tags=["c","b"]"#), current: current) == [])
        #expect(
            try operations(parsed(#"title=T"#, #"violations=["torture","looting"]"#), current: nil) == [
                .set(path: "title", value: "T"),
                .add(path: "violations", element: "looting"), .add(path: "violations", element: "torture"),
            ])
        for bad in ["tags=a", #"tags=["a",1]"#, #"tags={"a":true}"#] {
            let error = #expect(throws: ValidationError.self, "\(bad)") { try operations(parsed(bad), current: current) }
            #expect(error?.path == "tags")
            #expect(error?.message.contains("expected an array of strings") == true)
        }
        // Elements are still validated.
        let error = #expect(throws: ValidationError.self) { try operations(parsed(#"violations=["theft"]"#), current: current) }
        #expect(error?.path == "violations")
    }

    @Test func addEntryMakesAnIDAndSetsEachField() throws {
        let current = record([.set(path: "title", value: "T")])
        let ops = try operations(parsed(#"victims+={"sex":"female","pseudonym":"V-12","age_range":"18-30"}"#), current: current)
        #expect(
            ops == [
                .set(path: "victims.e1.age_range", value: "18-30"), .set(path: "victims.e1.pseudonym", value: "V-12"),
                .set(path: "victims.e1.sex", value: "female"),
            ])
        let two = try operations(parsed(#"victims+={"sex":"male"}"#, #"sources+={"kind":"media"}"#), current: current)
        #expect(two == [.set(path: "victims.e1.sex", value: "male"), .set(path: "sources.e2.kind", value: "media")])
        // Text entry fields are coerced like top-level text fields.
        #expect(
            try operations(parsed(#"victims+={"pseudonym":12}"#), current: current) == [
                .set(path: "victims.e1.pseudonym", value: "12")
            ])
    }

    @Test func badEntriesNameThePath() {
        let current = record([.set(path: "title", value: "T")])
        let cases: [(FieldChange, [String], String, String)] = [
            (.addEntry(collection: "victims", fields: ["height": 180]), ["e1"], "victims.e1.height", "unknown field"),
            (
                .addEntry(collection: "victims", fields: ["sex": "alien"]), ["e1"], "victims.e1.sex",
                "expected one of female, male, other, unknown"
            ),
            (.addEntry(collection: "victims", fields: [:]), ["e1"], "victims", "an entry is a non-empty JSON object"),
            (.addEntry(collection: "victims", fields: ["sex": "male"]), ["Bad ID"], "victims.Bad ID", "entry ids are"),
            (.set(path: "victims", value: "x"), ["e1"], "victims", "expected an array of entry objects"),
            (.set(path: "victims", value: ["x"]), ["e1"], "victims", "an entry is a non-empty JSON object"),
        ]
        for (change, ids, path, message) in cases {
            let error = #expect(throws: ValidationError.self) { try operations([change], current: current, ids: ids) }
            #expect(error?.path == path, "\(change)")
            #expect(error?.message.contains(message) == true, "\(change): \(error?.message ?? "no error")")
        }
    }

    @Test func setCollectionByArrayOrObject() throws {
        let current = record([.set(path: "title", value: "T")])
        #expect(
            try operations([.set(path: "victims", value: [["sex": "male"], ["sex": "female"]])], current: current) == [
                .set(path: "victims.e1.sex", value: "male"), .set(path: "victims.e2.sex", value: "female"),
            ])
        #expect(
            try operations([.set(path: "victims", value: ["v9": ["sex": "male"], "v2": ["status": "killed"]])], current: current) == [
                .set(path: "victims.v2.status", value: "killed"), .set(path: "victims.v9.sex", value: "male"),
            ])
    }

    @Test func removeEntryClearsEveryFieldItHolds() throws {
        let current = record(
            [
                .set(path: "title", value: "T"), .set(path: "victims.v1.sex", value: "male"),
                .set(path: "victims.v1.pseudonym", value: "P"),
                .set(path: "victims.v2.sex", value: "female"), .set(path: "victims.v10.sex", value: "male"),
            ],
            [.unset(path: "victims.v1.pseudonym")],
            [.set(path: "victims.v1.status", value: "killed")])
        #expect(current.entryPaths(collection: "victims", entry: "v1") == ["victims.v1.sex", "victims.v1.status"])
        #expect(
            try operations(parsed("victims-=v1"), current: current) == [
                .unset(path: "victims.v1.sex"), .unset(path: "victims.v1.status"), .unset(path: "victims.v1"),
            ])
        #expect(try operations(parsed("victims-=v2"), current: current) == [.unset(path: "victims.v2.sex"), .unset(path: "victims.v2")])

        // Once removed, the entry no longer exists.
        let removal = try operations(parsed("victims-=v1"), current: current)
        var after = current
        after.apply(Fixture.revision(Fixture.nodeA, 4, removal, context: after.version))
        #expect(after.entryPaths(collection: "victims", entry: "v1") == [])
        #expect(after.fields["victims"]?["v1"] == nil)
        #expect(after.fields["victims"]?["v2"] == ["sex": "female"])
        for missing in ["victims-=v1", "victims-=nope", "sources-=v2"] {
            let error = #expect(throws: ValidationError.self, "\(missing)") { try operations(parsed(missing), current: after) }
            #expect(error?.message == "no such entry")
            #expect(error?.path.hasSuffix(String(missing.split(separator: "=").last!)) == true)
        }
        #expect(throws: ValidationError.self) { try operations(parsed("title=T", "victims-=v1"), current: nil) }
    }

    @Test func theSameRegisterTwiceIsRejected() {
        let current = record([.set(path: "title", value: "T"), .add(path: "tags", element: "a")])
        let error = #expect(throws: ValidationError.self) {
            try operations(parsed("title=A", "title=B"), current: current)
        }
        #expect(error?.path == "title")
        #expect(error?.message == "changed twice in one edit")
        let element = #expect(throws: ValidationError.self) {
            try operations(parsed("tags+=b", #"tags=["a","b"]"#), current: current)
        }
        #expect(element?.path == "tags[b]")
    }

    // MARK: IncidentDocument

    @Test func documentFlattensIntoChanges() throws {
        let document = try json(
            #"""
            {"title":"Shelling","location":{"place":"Old market","country":"SY"},"casualties":{"killed":3},
             "tags":["a","b"],"custom":{"source":{"url":"x"},"n":1},"victims":[{"sex":"male"}],
             "id":"ignored","deleted":false,"conflicts":[],"version":{}}
            """#)
        let changes = try IncidentDocument.changes(from: document)
        #expect(
            changes == [
                .set(path: "casualties.killed", value: 3),
                .set(path: "custom.n", value: 1),
                .set(path: "custom.source", value: ["url": "x"]),
                .set(path: "location.country", value: "SY"),
                .set(path: "location.place", value: "Old market"),
                .set(path: "tags", value: ["a", "b"]),
                .set(path: "title", value: "Shelling"),
                .set(path: "victims", value: [["sex": "male"]]),
            ])
        // A `show --json` document is read from its `fields` member.
        let wrapped = try IncidentDocument.changes(from: ["id": "x", "fields": document])
        #expect(wrapped == changes)
    }

    @Test(arguments: [
        (#"{"title":"T","colour":"red"}"#, "colour", "unknown field"),
        (#"{"title":"T","location":{"street":"x"}}"#, "location.street", "unknown field"),
        (#"{"title":"T","location":"Aleppo"}"#, "location", "unknown field"),
        (#"{"title":"T","custom":[1]}"#, "custom", "expected an object of free keys"),
        (#"[{"title":"T"}]"#, "", "an incident is a JSON object"),
    ])
    func badDocumentsNameThePath(_ text: String, _ path: String, _ message: String) throws {
        let document = try json(text)
        let error = #expect(throws: ValidationError.self) { try IncidentDocument.changes(from: document) }
        #expect(error?.path == path)
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "no error")")
    }

    /// A document, applied as a new record, reads back as the same nested fields.
    @Test func documentRoundTripsThroughARecord() throws {
        let document = try json(
            #"""
            {"title":"Shelling","narrative":"Two shells.","location":{"place":"Old market","country":"SY","lat":36.2},
             "casualties":{"killed":3,"injured":0},"tags":["a","b"],"violations":["attack-on-civilians"],
             "custom":{"source":{"url":"x"}},"victims":{"v1":{"sex":"male","age_range":"18-30"}},"status":"draft"}
            """#)
        let ops = try operations(IncidentDocument.changes(from: document), current: nil)
        var state = RecordState(id: Fixture.record)
        state.apply(Fixture.revision(Fixture.nodeA, 1, ops))
        #expect(state.fields == document)
        #expect(!state.isDeleted)
        #expect(!state.isConflicted)
    }
}

/// #14: canonically equivalent keys are one key, spelled in NFC.
@Suite struct UnicodeKeyTests {
    let composed = "custom.caf\u{E9}"
    let decomposed = "custom.cafe\u{301}"

    @Test func localEditsWriteKeysAndElementsInNFC() throws {
        #expect(Array(decomposed.utf8) != Array(composed.utf8))
        #expect(composed == decomposed, "Swift compares them as equal, so they would be one register")
        let ops = try LocalEdit.operations(
            for: [.set(path: "title", value: "T"), .set(path: decomposed, value: 1), .add(path: "tags", element: "re\u{301}sume\u{301}")],
            current: nil, newEntryID: { "e1" })
        #expect(ops.contains { Array($0.path.utf8) == Array(composed.utf8) })
        #expect(ops.contains { if case .add(_, let e) = $0 { Array(e.utf8) == Array("r\u{E9}sum\u{E9}".utf8) } else { false } })
        #expect(ops.allSatisfy { $0.path.isNFC })
    }

    @Test func aDecomposedKeyFromAPeerIsRefused() {
        #expect(throws: ValidationError.self) { try IncidentSchema.validate(.set(path: decomposed, value: 1)) }
        #expect(throws: ValidationError.self) { try IncidentSchema.validate(.add(path: "tags", element: "cafe\u{301}")) }
        #expect(throws: Never.self) { try IncidentSchema.validate(.set(path: composed, value: 1)) }
        let error = #expect(throws: ValidationError.self) { try IncidentSchema.validate(.set(path: decomposed, value: 1)) }
        #expect(error?.description.contains("Unicode NFC") == true)
    }
}

/// #14: a collection entry removed while someone concurrently sets one of its empty fields is a
/// conflict on the entry, as a delete against an edit is for a record (spec 6.6).
@Suite struct EntryRemovalTests {
    func base() throws -> RecordState {
        var state = RecordState(id: Fixture.record)
        state.apply(
            Fixture.revision(
                Fixture.nodeA, 1,
                [
                    .set(path: "title", value: "T"), .set(path: "victims.v1.pseudonym", value: "V-01"),
                    .set(path: "victims.v1.status", value: "killed"),
                ]))
        return state
    }

    @Test func aRemovalConcurrentWithAnEditOfTheEntryIsAConflictOnTheEntry() throws {
        let start = try base()
        let removal = try LocalEdit.operations(for: [.removeEntry(collection: "victims", entry: "v1")], current: start, newEntryID: { "x" })
        let remove = Fixture.revision(Fixture.nodeA, 2, removal, context: start.version)
        let fragment = Fixture.revision(Fixture.nodeB, 1, [.set(path: "victims.v1.age_range", value: "30-40")], context: start.version)
        for order in [[remove, fragment], [fragment, remove]] {
            var state = start
            for revision in order { state.apply(revision) }
            #expect(state.conflicts.map(\.path) == ["victims.v1"], "the entry, not a silent fragment")
            #expect(state.fields["victims"]?["v1"]?["age_range"] == "30-40", "shown while in conflict")
            // The admin removes it: the fragment goes too, and the conflict ends.
            let resolution = Fixture.revision(
                Fixture.nodeC, 1, [.unset(path: "victims.v1"), .unset(path: "victims.v1.age_range")], context: state.version)
            state.apply(resolution)
            #expect(state.conflicts.isEmpty)
            #expect(state.fields["victims"] == nil)
        }
        // Without the concurrent edit, a removal leaves no entry and no conflict.
        var alone = start
        alone.apply(remove)
        #expect(alone.conflicts.isEmpty)
        #expect(alone.fields["victims"] == nil)
        #expect(alone.removedEntries == ["victims.v1"])
    }

    @Test func entryRegistersAreWrittenByFieldWritesAndValidated() throws {
        let revision = Fixture.revision(
            Fixture.nodeA, 1,
            [
                .set(path: "title", value: "T"), .set(path: "victims.v1.sex", value: "male"),
                .set(path: "victims.v1.status", value: "killed"),
            ])
        #expect(revision.writes.filter { $0.key.path == "victims.v1" }.map(\.value) == [.bool(true)], "once per entry")
        #expect(throws: Never.self) { try IncidentSchema.validate(.unset(path: "victims.v1")) }
        #expect(throws: Never.self) { try IncidentSchema.validate(.set(path: "victims.v1", value: true)) }
        #expect(throws: ValidationError.self) { try IncidentSchema.validate(.set(path: "victims.v1", value: "x")) }
        #expect(throws: ValidationError.self) { try IncidentSchema.validate(.unset(path: "victims.V!")) }
    }
}
