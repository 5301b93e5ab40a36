import Foundation

/// What a browser would send for the page's POST form to `action`: hidden and text inputs, checked
/// boxes and radios, each select's selected option and each textarea's text (the HTML parser
/// drops the line break right after `<textarea>`). Values are unescaped as a browser reads them.
struct FormScraper {
    var fields: [(String, String)] = []

    init(_ page: String, action: String) throws {
        guard let start = page.range(of: "<form method=\"post\" action=\"\(action)\""),
            let end = page.range(of: "</form>", range: start.upperBound..<page.endIndex)
        else { throw CocoaError(.formatting) }
        let form = String(page[start.lowerBound..<end.lowerBound])
        for tag in Self.matches(#"<input [^>]*>"#, in: form) {
            guard let name = Self.attribute("name", in: tag) else { continue }
            let type = Self.attribute("type", in: tag) ?? "text"
            if type == "checkbox" || type == "radio", !tag.contains(" checked") { continue }
            fields.append((name, Self.attribute("value", in: tag) ?? (type == "checkbox" ? "on" : "")))
        }
        for block in Self.matches(#"<textarea [^>]*>[\s\S]*?</textarea>"#, in: form) {
            guard let name = Self.attribute("name", in: block), let open = block.firstIndex(of: ">") else { continue }
            var text = String(block[block.index(after: open)...].dropLast("</textarea>".count))
            if text.hasPrefix("\n") { text.removeFirst() }
            fields.append((name, Self.unescape(text)))
        }
        for block in Self.matches(#"<select [^>]*>[\s\S]*?</select>"#, in: form) {
            guard let name = Self.attribute("name", in: block) else { continue }
            let selected = Self.matches(#"<option [^>]*selected[^>]*>"#, in: block).first.flatMap { Self.attribute("value", in: $0) } ?? ""
            fields.append((name, selected))
        }
    }

    subscript(name: String) -> String? {
        get { fields.first { $0.0 == name }?.1 }
        set {
            fields.removeAll { $0.0 == name }
            if let newValue { fields.append((name, newValue)) }
        }
    }

    static func matches(_ pattern: String, in text: String) -> [String] {
        let regex = try! NSRegularExpression(pattern: pattern)
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap {
            Range($0.range, in: text).map { String(text[$0]) }
        }
    }

    static func attribute(_ name: String, in tag: String) -> String? {
        guard let range = tag.range(of: " \(name)=\"") else { return nil }
        return unescape(String(tag[range.upperBound...].prefix { $0 != "\"" }))
    }

    static func unescape(_ text: String) -> String {
        text.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }
}
