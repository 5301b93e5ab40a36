import Testing

@testable import FieldSyncCore

/// ISO 3166-1 alpha-2 validation for `location.country`.
@Suite struct CountryCodeTests {
    @Test func hasEveryOfficiallyAssignedCode() {
        #expect(CountryCode.all.count == 249)
        #expect(
            CountryCode.all.allSatisfy { code in
                code.utf8.count == 2 && code.utf8.allSatisfy { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) }
            })
    }

    @Test(arguments: ["SY", "LB", "TR", "FR", "RU", "US", "GB", "DE", "UA", "PS", "SS", "AX", "BQ", "CW", "SX", "ZW"])
    func acceptsAssigned(_ code: String) {
        #expect(CountryCode.isValid(code))
    }

    @Test(arguments: [
        "", "sy", "Sy", "fr", "SYR", "S", " SY", "SY ", "UK", "EU", "XK", "AN", "YU", "ZZ", "AA", "QM", "XX", "12",
    ])
    func rejectsOthers(_ code: String) {
        #expect(!CountryCode.isValid(code))
    }
}
