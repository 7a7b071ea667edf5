import Foundation
import ReproSupport
import ReproStore

/// How two versions of one output compare.
public struct OutputComparison: Sendable {
    public enum Verdict: String, Sendable {
        /// Same bytes (same SHA-256).
        case identical = "IDENTICAL"
        /// Different bytes, every number within the tolerance, everything else equal.
        case equivalent = "EQUIVALENT"
        case divergent = "DIVERGENT"
    }

    /// One place the two differ.
    public struct Difference: Sendable {
        /// A JSON path, `row 3, column dsb`, `line 12` or `byte 4096`.
        public var location: String
        public var old: String
        public var new: String
        public var json: JSONValue { ["location": .string(location), "old": .string(old), "new": .string(new)] }
    }

    public var name: String
    public var verdict: Verdict
    /// "json", "csv", "text" or "binary": how the contents were compared.
    public var format: String
    public var maxAbs: Double = 0
    public var maxRel: Double = 0
    public var maxUlps: UInt64 = 0
    /// Where the largest absolute error is.
    public var maxAbsAt: String?
    /// At most `limit` differences (beyond tolerance), and how many there are in all.
    public var differences: [Difference] = []
    public var differenceCount = 0
    public var sizes: (Int, Int) = (0, 0)

    public var json: JSONValue {
        [
            "name": .string(name), "verdict": .string(verdict.rawValue), "format": .string(format),
            "max_abs": .double(maxAbs), "max_rel": .double(maxRel), "max_ulps": .int(Int64(clamping: maxUlps)),
            "max_abs_at": maxAbsAt.json, "differences": .array(differences.map(\.json)),
            "difference_count": .int(Int64(differenceCount)), "sizes": [.int(Int64(sizes.0)), .int(Int64(sizes.1))],
        ]
    }
}

/// Compares two versions of an output: byte-identical, or field by field for JSON and CSV
/// (numbers within a tolerance), line by line for text, by first differing byte for binary.
/// Used by `repro diff` and `repro verify`.
public enum OutputComparator {
    public static let limit = 20

    /// Outputs larger than this are compared by hash only: a field-by-field comparison reads
    /// both into memory.
    public static let maxFieldCompareBytes: Int64 = 256 << 20

    /// Compares two stored outputs; ones too large to read into memory by hash only, saying so.
    public static func compare(name: String, _ x: OutputFile, _ y: OutputFile, store: Store, tolerance: Tolerance = .exact) throws
        -> OutputComparison
    {
        guard x.size <= maxFieldCompareBytes, y.size <= maxFieldCompareBytes else {
            var c = OutputComparison(name: name, verdict: .divergent, format: "sha256")
            c.sizes = (Int(x.size), Int(y.size))
            c.differences = [
                .init(location: "sha256 (over \(maxFieldCompareBytes >> 20) MiB: compared by hash, not field by field)", old: x.sha256, new: y.sha256)
            ]
            c.differenceCount = 1
            return c
        }
        let limit = Int(maxFieldCompareBytes)
        return compare(name: name, try store.readBlob(x.sha256, limit: limit), try store.readBlob(y.sha256, limit: limit), tolerance: tolerance)
    }

    public static func compare(name: String, _ a: [UInt8], _ b: [UInt8], tolerance: Tolerance = .exact) -> OutputComparison {
        var c = OutputComparison(name: name, verdict: .identical, format: "binary")
        c.sizes = (a.count, b.count)
        if a == b { return c }
        let lower = name.lowercased()
        if lower.hasSuffix(".json"), let ja = try? JSONParser.parse(a), let jb = try? JSONParser.parse(b) {
            c.format = "json"
            compareJSON(ja, jb, tolerance, &c)
        } else if lower.hasSuffix(".csv") || lower.hasSuffix(".tsv"), let ta = text(a), let tb = text(b) {
            c.format = "csv"
            compareCSV(ta, tb, separator: lower.hasSuffix(".tsv") ? "\t" : ",", tolerance, &c)
        } else if let ta = text(a), let tb = text(b) {
            c.format = "text"
            compareText(ta, tb, tolerance, &c)
        } else {
            c.format = "binary"
            let n = min(a.count, b.count)
            let offset = (0..<n).first { a[$0] != b[$0] } ?? n
            c.differences = [.init(location: "byte \(offset)", old: byteText(a, offset), new: byteText(b, offset))]
            if a.count != b.count {
                c.differences.append(.init(location: "size", old: "\(a.count) bytes", new: "\(b.count) bytes"))
            }
            c.differenceCount = c.differences.count
        }
        c.verdict = c.differenceCount == 0 ? .equivalent : .divergent
        return c
    }

    private static func byteText(_ bytes: [UInt8], _ i: Int) -> String {
        i < bytes.count ? String(format: "0x%02x", bytes[i]) : "(end of file)"
    }

    private static func text(_ bytes: [UInt8]) -> String? {
        guard !bytes.contains(0) else { return nil }
        return String(validating: bytes, as: UTF8.self)
    }

    /// Records a numeric pair's error; true when the tolerance accepts it. The relative error
    /// is against the larger magnitude, so a value going to 0 has relative error 1, not infinity.
    /// Non-finite values are compared as text by the callers.
    private static func number(_ x: Double, _ y: Double, at location: String, _ t: Tolerance, _ c: inout OutputComparison) -> Bool {
        guard x.isFinite, y.isFinite else { return false }
        let abs = Swift.abs(x - y)
        let scale = max(Swift.abs(x), Swift.abs(y))
        let rel = scale > 0 ? abs / scale : 0
        let ulps = Tolerance.ulpDistance(x, y)
        if abs > c.maxAbs { c.maxAbs = abs; c.maxAbsAt = location }
        c.maxRel = max(c.maxRel, rel)
        c.maxUlps = max(c.maxUlps, ulps)
        return t.accepts(x, y)
    }

    private static func add(_ d: OutputComparison.Difference, _ c: inout OutputComparison) {
        c.differenceCount += 1
        if c.differences.count < limit { c.differences.append(d) }
    }

    private static func compareJSON(_ a: JSONValue, _ b: JSONValue, _ t: Tolerance, _ c: inout OutputComparison) {
        let fa = JSONDiff.flatten(a), fb = JSONDiff.flatten(b)
        for path in Set(fa.keys).union(fb.keys).sorted() {
            let (x, y) = (fa[path], fb[path])
            if x == y { continue }
            let location = path.isEmpty ? "(root)" : path
            if let nx = x?.numberValue, let ny = y?.numberValue, number(nx, ny, at: location, t, &c) { continue }
            add(.init(location: location, old: x?.canonical ?? "(absent)", new: y?.canonical ?? "(absent)"), &c)
        }
    }

    private static func compareCSV(_ a: String, _ b: String, separator: Character, _ t: Tolerance, _ c: inout OutputComparison) {
        let ra = CSV.parse(a, separator: separator), rb = CSV.parse(b, separator: separator)
        let header = ra.first ?? []
        if ra.count != rb.count {
            add(.init(location: "rows", old: "\(ra.count) rows", new: "\(rb.count) rows"), &c)
        }
        for r in 0..<min(ra.count, rb.count) {
            let (x, y) = (ra[r], rb[r])
            if x == y { continue }
            for col in 0..<max(x.count, y.count) {
                let (vx, vy) = (col < x.count ? x[col] : "(absent)", col < y.count ? y[col] : "(absent)")
                if vx == vy { continue }
                let colName = r > 0 && col < header.count ? header[col] : "\(col + 1)"
                let location = "row \(r), column \(colName)"
                if let nx = Double(vx.trimmingCharacters(in: .whitespaces)), let ny = Double(vy.trimmingCharacters(in: .whitespaces)),
                    number(nx, ny, at: location, t, &c)
                {
                    continue
                }
                add(.init(location: location, old: vx, new: vy), &c)
            }
        }
    }

    /// Lines compared in order; the differing ones listed like a unified diff's -/+ pairs.
    private static func compareText(_ a: String, _ b: String, _ t: Tolerance, _ c: inout OutputComparison) {
        let la = CSV.lines(a), lb = CSV.lines(b)
        for i in 0..<max(la.count, lb.count) {
            let x = i < la.count ? String(la[i]) : "(absent)"
            let y = i < lb.count ? String(lb[i]) : "(absent)"
            if x == y { continue }
            if let nx = Double(x.trimmingCharacters(in: .whitespaces)), let ny = Double(y.trimmingCharacters(in: .whitespaces)),
                number(nx, ny, at: "line \(i + 1)", t, &c)
            {
                continue
            }
            add(.init(location: "line \(i + 1)", old: "-" + x, new: "+" + y), &c)
        }
    }
}

/// CSV as RFC 4180 defines it (and Python's `csv` writes it): records end with CRLF or LF,
/// fields may be quoted, and a quoted field may hold the separator, line breaks and doubled
/// quotes. Works on Unicode scalars: in a Swift String, "\r\n" is one Character.
enum CSV {
    static func parse(_ text: String, separator: Character) -> [[String]] {
        let sep = separator.unicodeScalars.first ?? ","
        var rows: [[String]] = []
        var row: [String] = []
        var field = String.UnicodeScalarView()
        var quoted = false
        var atFieldStart = true
        var scalars = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        func endField() {
            row.append(String(field))
            field = String.UnicodeScalarView()
            atFieldStart = true
        }
        func endRow() {
            endField()
            rows.append(row)
            row = []
        }
        while let ch = pending ?? scalars.next() {
            pending = nil
            if quoted {
                if ch == "\"" {
                    if let next = scalars.next() {
                        if next == "\"" { field.append("\"") } else { quoted = false; pending = next }
                    } else {
                        quoted = false
                    }
                } else {
                    field.append(ch)
                }
                continue
            }
            switch ch {
            case "\"" where atFieldStart:
                quoted = true
                atFieldStart = false
            case sep:
                endField()
            case "\r":
                if let next = scalars.next(), next != "\n" { pending = next }
                endRow()
            case "\n":
                endRow()
            default:
                field.append(ch)
                atFieldStart = false
            }
        }
        if !field.isEmpty || !row.isEmpty || quoted { endRow() }
        return rows
    }

    /// Lines split at LF or CRLF (the line break itself not kept).
    static func lines(_ text: String) -> [String] {
        var out: [String] = []
        var current = String.UnicodeScalarView()
        var it = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        while let ch = pending ?? it.next() {
            pending = nil
            if ch == "\n" {
                out.append(String(current))
                current = String.UnicodeScalarView()
            } else if ch == "\r" {
                if let next = it.next() {
                    if next == "\n" {
                        out.append(String(current))
                        current = String.UnicodeScalarView()
                    } else {
                        current.append(ch)
                        pending = next
                    }
                } else {
                    current.append(ch)
                }
            } else {
                current.append(ch)
            }
        }
        out.append(String(current))
        return out
    }
}
