import Crypto
import Foundation

/// Builds the report's HTML with escaping by default: every text and attribute value passes
/// through `escape`; markup (tag and attribute names, constant fragments) can only be a
/// `StaticString`, a compile-time constant. A run id, a param, a file name, a commit message or
/// a CSV cell from a teammate's bucket can therefore never become markup or script.
struct HTML {
    private(set) var out = ""

    typealias Attributes = KeyValuePairs<StaticString, String>

    /// Constant markup (never a value).
    mutating func raw(_ s: StaticString) { out += s.description }

    /// Text content, escaped.
    mutating func text(_ s: String) { out += HTML.escape(s) }

    /// `<tag a="v"...>`, the values escaped.
    mutating func open(_ tag: StaticString, _ attrs: Attributes = [:]) {
        out += "<" + tag.description
        for (k, v) in attrs {
            out += " " + k.description + "=\"" + HTML.escape(v) + "\""
        }
        out += ">"
    }

    mutating func close(_ tag: StaticString) { out += "</" + tag.description + ">" }

    /// `<tag>text</tag>`.
    mutating func el(_ tag: StaticString, _ text: String) { el(tag, [:], text) }

    /// `<tag>…</tag>` with the inside built by `body`.
    mutating func el(_ tag: StaticString, _ body: (inout HTML) -> Void) { el(tag, [:], body) }

    /// `<tag attrs>text</tag>`.
    mutating func el(_ tag: StaticString, _ attrs: Attributes, _ text: String) {
        open(tag, attrs)
        self.text(text)
        close(tag)
    }

    /// `<tag attrs>…</tag>` with the inside built by `body`.
    mutating func el(_ tag: StaticString, _ attrs: Attributes, _ body: (inout HTML) -> Void) {
        open(tag, attrs)
        body(&self)
        close(tag)
    }

    /// `<tag attrs/>` (SVG shapes).
    mutating func void(_ tag: StaticString, _ attrs: Attributes) {
        open(tag, attrs)
        out.removeLast()
        out += "/>"
    }

    /// Another builder's output (already escaped).
    mutating func append(_ other: HTML) { out += other.out }

    static func escape(_ s: String) -> String {
        guard s.utf8.contains(where: { $0 == 0x26 || $0 == 0x3C || $0 == 0x3E || $0 == 0x22 || $0 == 0x27 }) else { return s }
        var out = ""
        out.reserveCapacity(s.utf8.count + 16)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// The CSP source for an inline `<script>` or `<style>` body: `'sha256-…'`.
    static func cspHash(_ body: String) -> String {
        "'sha256-" + Data(SHA256.hash(data: Array(body.utf8))).base64EncodedString() + "'"
    }
}
