import Foundation

/// An element of an XML document as S3 and Azure Blob Storage answer: its local name (a
/// namespace prefix dropped), attributes, child elements and text, entities decoded.
struct XMLElement: Sendable {
    var name: String
    var attributes: [String: String] = [:]
    var children: [XMLElement] = []
    /// The element's own character data (CDATA included), entities decoded.
    var text = ""

    /// The first element with this local name: this one or any below it, in document order.
    func first(_ name: String) -> XMLElement? {
        if self.name == name { return self }
        for c in children { if let e = c.first(name) { return e } }
        return nil
    }

    /// Every element with this local name below this one (not inside another match).
    func all(_ name: String) -> [XMLElement] {
        var out: [XMLElement] = []
        for c in children { if c.name == name { out.append(c) } else { out += c.all(name) } }
        return out
    }

    /// The text of the first element with this name.
    func text(of name: String) -> String? { first(name)?.text }
}

/// A small, strict XML reader for service answers: elements, attributes (either quote),
/// self-closing tags, comments, processing instructions, CDATA, the five named entities and
/// numeric references. No DTDs (a service answer has none; one is refused, as are entities it
/// would declare). Foundation's XMLParser would load libxml2 into every command.
enum XMLText {
    struct ParseError: Error, CustomStringConvertible {
        var description: String
    }

    /// The document's root element.
    static func parse(_ text: String) throws(ParseError) -> XMLElement {
        var p = Parser(bytes: Array(text.utf8))
        return try p.document()
    }

    /// The root, or nil for a body that is not XML (an empty body, an HTML error page).
    static func root(_ text: String) -> XMLElement? { try? parse(text) }

    /// The text of the first element named `tag` in `text` (nil when absent or not XML).
    static func first(_ tag: String, in text: String) -> String? { root(text)?.text(of: tag) }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// Decodes entity and character references; nil for an unknown or malformed one.
    static func decode(_ raw: ArraySlice<UInt8>) -> String? {
        guard raw.contains(UInt8(ascii: "&")) else { return String(decoding: raw, as: UTF8.self) }
        var out: [UInt8] = []
        var i = raw.startIndex
        while i < raw.endIndex {
            guard raw[i] == UInt8(ascii: "&") else {
                out.append(raw[i])
                i += 1
                continue
            }
            guard let semi = raw[i...].firstIndex(of: UInt8(ascii: ";")), semi - i <= 12 else { return nil }
            let name = String(decoding: raw[(i + 1)..<semi], as: UTF8.self)
            let scalar: Unicode.Scalar?
            switch name {
            case "amp": scalar = "&"
            case "lt": scalar = "<"
            case "gt": scalar = ">"
            case "quot": scalar = "\""
            case "apos": scalar = "'"
            default:
                if name.hasPrefix("#x") || name.hasPrefix("#X") {
                    scalar = UInt32(name.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init)
                } else if name.hasPrefix("#") {
                    scalar = UInt32(name.dropFirst(1)).flatMap(Unicode.Scalar.init)
                } else {
                    scalar = nil
                }
            }
            guard let scalar else { return nil }
            out += Array(String(Character(scalar)).utf8)
            i = semi + 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    struct Parser {
        let bytes: [UInt8]
        var i = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        func fail(_ what: String) -> ParseError { ParseError(description: "not well-formed XML at byte \(i): \(what)") }

        func starts(_ s: String) -> Bool {
            let u = Array(s.utf8)
            return i + u.count <= bytes.count && Array(bytes[i..<(i + u.count)]) == u
        }

        mutating func skipSpace() {
            while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 }
        }

        /// Skips past `end`, or fails.
        mutating func skip(past end: String) throws(ParseError) {
            let u = Array(end.utf8)
            while i + u.count <= bytes.count {
                if Array(bytes[i..<(i + u.count)]) == u {
                    i += u.count
                    return
                }
                i += 1
            }
            throw fail("unterminated, expected \(end)")
        }

        /// Comments, processing instructions and the XML declaration before, between or after elements.
        mutating func skipMisc() throws(ParseError) {
            while true {
                skipSpace()
                if starts("<?") { try skip(past: "?>") } else if starts("<!--") { try skip(past: "-->") } else { return }
            }
        }

        mutating func document() throws(ParseError) -> XMLElement {
            // A byte-order mark is allowed before the declaration.
            if starts("\u{FEFF}") { i += 3 }
            try skipMisc()
            if starts("<!DOCTYPE") { throw fail("a DTD is not accepted in a service answer") }
            guard starts("<") else { throw fail("no root element") }
            let root = try element()
            try skipMisc()
            guard i == bytes.count else { throw fail("content after the root element") }
            return root
        }

        mutating func name() throws(ParseError) -> String {
            let start = i
            while i < bytes.count, !([0x20, 0x09, 0x0A, 0x0D, UInt8(ascii: ">"), UInt8(ascii: "/"), UInt8(ascii: "=")].contains(bytes[i])) {
                i += 1
            }
            guard i > start else { throw fail("a name is missing") }
            return String(decoding: bytes[start..<i], as: UTF8.self)
        }

        static func local(_ qualified: String) -> String {
            qualified.split(separator: ":").last.map(String.init) ?? qualified
        }

        mutating func element() throws(ParseError) -> XMLElement {
            i += 1  // <
            let qualified = try name()
            var e = XMLElement(name: Parser.local(qualified))
            while true {
                skipSpace()
                guard i < bytes.count else { throw fail("unterminated start tag <\(qualified)") }
                if starts("/>") {
                    i += 2
                    return e
                }
                if bytes[i] == UInt8(ascii: ">") {
                    i += 1
                    break
                }
                let attr = try name()
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "=") else { throw fail("attribute \(attr) has no value") }
                i += 1
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") || bytes[i] == UInt8(ascii: "'") else {
                    throw fail("attribute \(attr)'s value is not quoted")
                }
                let quote = bytes[i]
                i += 1
                let start = i
                while i < bytes.count, bytes[i] != quote { i += 1 }
                guard i < bytes.count, let value = XMLText.decode(bytes[start..<i]) else { throw fail("attribute \(attr)'s value") }
                i += 1
                e.attributes[attr] = value
            }
            var text: [UInt8] = []
            while true {
                guard i < bytes.count else { throw fail("<\(qualified)> is never closed") }
                if starts("</") {
                    i += 2
                    let closing = try name()
                    guard closing == qualified else { throw fail("</\(closing)> closes <\(qualified)>") }
                    skipSpace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: ">") else { throw fail("unterminated end tag") }
                    i += 1
                    guard let decoded = XMLText.decode(text[...]) else { throw fail("an unknown entity in <\(qualified)>") }
                    e.text = decoded
                    return e
                }
                if starts("<![CDATA[") {
                    i += 9
                    let start = i
                    try skip(past: "]]>")
                    // Escaped so the decoding of the whole text leaves it as written.
                    text += Array(XMLText.escape(String(decoding: bytes[start..<(i - 3)], as: UTF8.self)).utf8)
                } else if starts("<!--") {
                    try skip(past: "-->")
                } else if starts("<?") {
                    try skip(past: "?>")
                } else if bytes[i] == UInt8(ascii: "<") {
                    e.children.append(try element())
                } else {
                    text.append(bytes[i])
                    i += 1
                }
            }
        }
    }
}
