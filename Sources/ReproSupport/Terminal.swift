/// Text that came from outside (a commit message, a pulled record's fields, a simulation's
/// stderr) is printed without its terminal control characters: an escape sequence in a
/// teammate's manifest must not retitle a window, hide lines or rewrite what was printed.
package enum Terminal {
    /// `text` with C0 controls (but newline and tab), DEL and C1 controls replaced by `?`.
    /// `keepNewlines: false` also replaces newlines and tabs (for one-line fields).
    package static func clean(_ text: String, keepNewlines: Bool = true) -> String {
        guard text.unicodeScalars.contains(where: { isControl($0, keepNewlines) }) else { return text }
        var out = String.UnicodeScalarView()
        for u in text.unicodeScalars { out.append(isControl(u, keepNewlines) ? "?" : u) }
        return String(out)
    }

    @inline(__always) static func isControl(_ u: Unicode.Scalar, _ keepNewlines: Bool) -> Bool {
        let v = u.value
        if keepNewlines && (v == 0x0A || v == 0x09) { return false }
        return v < 0x20 || v == 0x7F || (v >= 0x80 && v <= 0x9F)
    }
}
