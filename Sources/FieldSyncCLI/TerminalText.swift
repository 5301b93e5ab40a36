/// Text from records, revisions, accounts and the audit log, made safe to print to a terminal: a
/// hostile insider can put escape sequences (which move the cursor, rewrite earlier lines or retitle
/// the window) or bidi overrides (which reorder what the reader sees) into any field. Those scalars
/// are shown visibly instead, as `\u{1B}`; every other character, Arabic and other right-to-left
/// script included, prints as it is. `--json` output is exact and never goes through this.
enum TerminalText {
    static func visible(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isHidden) else { return text }
        var out = ""
        out.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            if isHidden(scalar) {
                out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// C0 controls, DEL, C1 controls, and the bidi embeddings, overrides and isolates.
    static func isHidden(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }
}
