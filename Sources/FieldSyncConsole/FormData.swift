import Foundation

/// An `application/x-www-form-urlencoded` body (or query string): each name with its values in order.
public struct FormData: Sendable, Equatable {
    public private(set) var values: [String: [String]] = [:]

    /// Lenient, for query strings: a pair that is not valid percent-encoding is skipped.
    public init(_ encoded: String) { self.init(parsing: encoded, strict: false)! }

    public init(values: [String: [String]]) { self.values = values }

    /// Nil when a name or value is not valid percent-encoding (a form a browser would never send):
    /// read leniently it would become an empty value, and clear a field.
    public init?(validating encoded: String) { self.init(parsing: encoded, strict: true) }

    private init?(parsing encoded: String, strict: Bool) {
        for pair in encoded.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = Self.decode(parts[0]), let value = parts.count > 1 ? Self.decode(parts[1]) : "" else {
                if strict { return nil }
                continue
            }
            values[name, default: []].append(value)
        }
    }

    /// The first value of `name`, or nil.
    public subscript(name: String) -> String? { values[name]?.first }

    public func all(_ name: String) -> [String] { values[name] ?? [] }

    /// Names that start with `prefix`, sorted.
    public func names(withPrefix prefix: String) -> [String] { values.keys.filter { $0.hasPrefix(prefix) }.sorted() }

    static func decode(_ part: Substring) -> String? {
        String(part.replacingOccurrences(of: "+", with: " ")).removingPercentEncoding
    }

    /// `name=value&…`, percent-encoded, for links that keep a page's filters.
    public static func encode(_ pairs: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return pairs.map { name, value in
            (name.addingPercentEncoding(withAllowedCharacters: allowed) ?? "") + "="
                + (value.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")
        }.joined(separator: "&")
    }
}
