/// A JSON value that keeps integers and floats distinct, so `2` and `2.0` hash differently
/// and a round trip through the store never turns one into the other.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    package subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    package var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    package var intValue: Int64? {
        if case .int(let i) = self { return i }
        return nil
    }

    /// A number as a Double, whether it was written as an integer or a float.
    package var numberValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    package var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    package var objectValue: [String: JSONValue]? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// The value at a dotted path such as `params.a.b`.
    package func value(atPath path: [String]) -> JSONValue? {
        var current = self
        for part in path {
            guard let next = current[part] else { return nil }
            current = next
        }
        return current
    }

    /// A human word for the type, used in error messages.
    package var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .int: return "integer"
        case .double: return "float"
        case .string: return "string"
        case .array: return "list"
        case .object: return "mapping"
        }
    }
}

extension JSONValue {
    /// Canonical text: sorted keys (by UTF-16 code units, as RFC 8785), no whitespace,
    /// shortest round-trip numbers; floats always carry a `.` or an exponent.
    package var canonical: String { String(decoding: canonicalBytes, as: UTF8.self) }

    /// The canonical text as UTF-8 bytes, what is hashed: written into one byte buffer (a
    /// sweep hashes two canonical records per point; String appends were a third of it).
    package var canonicalBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        writeCanonical(to: &out)
        return out
    }

    func writeCanonical(to out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .double(let d): out.append(contentsOf: (d.isFinite ? NumberFormat.canonical(d) : "null").utf8)
        case .string(let s): JSONValue.writeString(s, to: &out)
        case .array(let a): JSONValue.writeArray(a, to: &out) { $0.writeCanonical(to: &$1) }
        case .object(let o): JSONValue.writeObject(o, to: &out) { $0.writeCanonical(to: &$1) }
        }
    }

    /// A canonical array of any elements, each written by `element`.
    static func writeArray<T>(_ a: [T], to out: inout [UInt8], _ element: (T, inout [UInt8]) -> Void) {
        out.append(UInt8(ascii: "["))
        for (i, v) in a.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            element(v, &out)
        }
        out.append(UInt8(ascii: "]"))
    }

    /// A canonical object of any values, keys in UTF-16 order, each value written by `value`.
    static func writeObject<V>(_ o: [String: V], to out: inout [UInt8], _ value: (V, inout [UInt8]) -> Void) {
        out.append(UInt8(ascii: "{"))
        // Pairs sorted whole: no lookup of each value by its key afterwards.
        let pairs = o.count < 2 ? Array(o) : o.sorted { JSONValue.utf16Precedes($0.key, $1.key) }
        for (i, kv) in pairs.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONValue.writeString(kv.key, to: &out)
            out.append(UInt8(ascii: ":"))
            value(kv.value, &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    /// A string as canonical JSON bytes: the same text `writeString(_:to: inout String)` gives.
    static func writeString(_ s: String, to out: inout [UInt8]) {
        var s = s
        let plain = s.withUTF8 { buf -> Bool in
            guard !buf.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) else { return false }
            out.append(UInt8(ascii: "\""))
            out.append(contentsOf: buf)
            out.append(UInt8(ascii: "\""))
            return true
        }
        if plain { return }
        var escaped = ""
        writeString(s, to: &escaped)
        out.append(contentsOf: escaped.utf8)
    }

    /// Indented text for people, keys sorted so output is stable (canonical JSON is
    /// `canonicalBytes`; this writer is only for people).
    package var pretty: String {
        var out = ""
        writePretty(to: &out, indent: 0)
        return out
    }

    private func writePretty(to out: inout String, indent: Int) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        // JSON has no infinity or NaN: such a value (a relative error against 0, say) is
        // written as null rather than as text no parser would read.
        case .double(let d): out += d.isFinite ? NumberFormat.canonical(d) : "null"
        case .string(let s): JSONValue.writeString(s, to: &out)
        case .array(let a):
            if a.isEmpty { out += "[]"; return }
            out += "["
            for (i, v) in a.enumerated() {
                if i > 0 { out += "," }
                out += "\n" + String(repeating: "  ", count: indent + 1)
                v.writePretty(to: &out, indent: indent + 1)
            }
            out += "\n" + String(repeating: "  ", count: indent) + "]"
        case .object(let o):
            if o.isEmpty { out += "{}"; return }
            out += "{"
            for (i, kv) in o.sorted(by: { JSONValue.utf16Precedes($0.key, $1.key) }).enumerated() {
                if i > 0 { out += "," }
                out += "\n" + String(repeating: "  ", count: indent + 1)
                JSONValue.writeString(kv.key, to: &out)
                out += ": "
                kv.value.writePretty(to: &out, indent: indent + 1)
            }
            out += "\n" + String(repeating: "  ", count: indent) + "}"
        }
    }

    /// UTF-16 code-unit order (canonical JSON's key order), compared on the UTF-8 bytes: the
    /// two orders agree except between U+E000...U+FFFF and characters past U+FFFF, whose first
    /// bytes (0xEE-0xEF, 0xF0-0xF4) send the comparison to UTF-16.
    static func utf16Precedes(_ a: String, _ b: String) -> Bool {
        var ia = a.utf8.makeIterator()
        var ib = b.utf8.makeIterator()
        while true {
            switch (ia.next(), ib.next()) {
            case (nil, nil): return false
            case (nil, _): return true
            case (_, nil): return false
            case (let x?, let y?):
                if x == y { continue }
                if x >= 0xEE || y >= 0xEE { return a.utf16.lexicographicallyPrecedes(b.utf16) }
                return x < y
            }
        }
    }

    private static func writeString(_ s: String, to out: inout String) {
        out += "\""
        // Nearly every string (keys, names, paths) needs no escape: appended whole, not scalar
        // by scalar.
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) {
            out += s
            out += "\""
            return
        }
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByFloatLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

extension Optional where Wrapped == String {
    /// `.string` or `.null`, for optional record fields.
    package var json: JSONValue { map { .string($0) } ?? .null }
}
