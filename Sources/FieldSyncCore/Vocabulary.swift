/// The controlled vocabularies of the incident schema, documented in `docs/RECORD-MODEL.md`.
public enum Vocabulary {
    /// Violation types, after HURIDOCS' events formats.
    public static let violations: [String] = [
        "killing", "summary-execution", "torture", "arbitrary-detention", "enforced-disappearance",
        "looting", "destruction-of-property", "displacement", "sexual-violence", "ill-treatment",
        "attack-on-civilians", "hostage-taking", "forced-eviction", "other",
    ]
    public static let status: [String] = ["draft", "submitted", "verified", "rejected"]
    public static let victimSex: [String] = ["female", "male", "other", "unknown"]
    public static let victimStatus: [String] = [
        "killed", "injured", "detained", "disappeared", "missing", "displaced", "survived", "unknown",
    ]
    /// Age ranges; besides these, "N-M" and "N+" with whole years are accepted.
    public static let ageRanges: [String] = ["child", "adult", "elderly", "unknown"]
    public static let sourceKinds: [String] = [
        "witness", "survivor", "relative", "medical", "official", "media", "social-media", "ngo-report",
        "document", "photo", "video", "other",
    ]
    /// Source reliability, on HURIDOCS' scale.
    public static let reliability: [String] = ["high", "medium", "low", "unknown"]
    public static let identificationBasis: [String] = [
        "self-identified", "uniform-or-insignia", "witness-statement", "video-or-photo", "official-statement",
        "media-report", "inferred", "unknown",
    ]
}
