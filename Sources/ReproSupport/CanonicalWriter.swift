/// Canonical JSON (see `JSONValue.canonical`) of a record whose keys are known, written
/// straight into bytes: no dictionary is built and sorted for it. A sweep writes two per point
/// (config hash and cache key). The caller gives keys in canonical (UTF-16) order; the tests
/// check each such writer against `JSONValue.canonicalBytes` of the same record.
package struct CanonicalWriter {
    private(set) var bytes: [UInt8] = []
    private var first = true

    public init() {
        bytes.reserveCapacity(512)
        bytes.append(UInt8(ascii: "{"))
    }

    /// Starts the next member (`key` must sort after the previous one).
    package mutating func key(_ k: StaticString) {
        bytes.append(first ? UInt8(ascii: "\"") : UInt8(ascii: ","))
        if !first { bytes.append(UInt8(ascii: "\"")) }
        first = false
        k.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    package mutating func value(_ v: JSONValue) { v.writeCanonical(to: &bytes) }
    /// Canonical bytes written before (the caller's own canonical JSON of the value).
    package mutating func raw(_ canonical: [UInt8]) { bytes.append(contentsOf: canonical) }
    package mutating func string(_ s: String) { JSONValue.writeString(s, to: &bytes) }
    package mutating func int(_ i: Int64) { bytes.append(contentsOf: String(i).utf8) }
    package mutating func null() { bytes.append(contentsOf: "null".utf8) }

    package mutating func strings(_ list: [String]) { JSONValue.writeArray(list, to: &bytes) { JSONValue.writeString($0, to: &$1) } }

    /// An object of strings, its keys sorted as canonical JSON sorts them.
    package mutating func stringObject(_ o: [String: String]) { JSONValue.writeObject(o, to: &bytes) { JSONValue.writeString($0, to: &$1) } }

    /// An object of values (sorted by `JSONValue`'s own writer).
    package mutating func object(_ o: [String: JSONValue]) { JSONValue.writeObject(o, to: &bytes) { $0.writeCanonical(to: &$1) } }

    package mutating func finish() -> [UInt8] {
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }
}
