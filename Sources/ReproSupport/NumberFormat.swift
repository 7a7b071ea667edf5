import CReproSys
/// Number text that matches ECMAScript's `Number.prototype.toString` (what RFC 8785 uses),
/// except that an integral float keeps a `.0` so floats and integers stay distinct.
enum NumberFormat {
    package static func canonical(_ value: Double) -> String {
        precondition(value.isFinite, "non-finite numbers are rejected before they reach JSON")
        if value == 0 { return "0.0" }  // -0 and 0 are the same number to a simulation
        // Swift's description is the shortest round-trip digit string; take its digits and
        // exponent and lay them out the ECMAScript way.
        let (negative, digits, exponent) = decompose(value)
        var out = negative ? "-" : ""
        let k = digits.count
        let n = exponent  // value = 0.digits × 10^n
        if k <= n && n <= 21 {
            out += digits + String(repeating: "0", count: n - k) + ".0"
        } else if 0 < n && n <= 21 {
            let idx = digits.index(digits.startIndex, offsetBy: n)
            out += digits[..<idx] + "." + digits[idx...]
        } else if -6 < n && n <= 0 {
            out += "0." + String(repeating: "0", count: -n) + digits
        } else {
            let e = n - 1
            let sign = e < 0 ? "-" : "+"
            let first = digits.prefix(1)
            let rest = digits.dropFirst()
            out += first + (rest.isEmpty ? "" : "." + rest) + "e" + sign + String(abs(e))
        }
        return out
    }

    /// Splits a finite non-zero double into sign, significant digits (no leading or trailing
    /// zeros) and n such that value = 0.d1d2... × 10^n.
    static func decompose(_ value: Double) -> (Bool, String, Int) {
        let text = abs(value).description  // e.g. "1e-06", "123.45", "1.5e+16"
        var mantissa = Substring(text)
        var exp = 0
        if let eIndex = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<eIndex]
            exp = Int(text[text.index(after: eIndex)...]) ?? 0
        }
        var intPart = Substring(mantissa)
        var fracPart: Substring = ""
        if let dot = mantissa.firstIndex(of: ".") {
            intPart = mantissa[..<dot]
            fracPart = mantissa[mantissa.index(after: dot)...]
        }
        var digits = String(intPart) + String(fracPart)
        var pointPos = intPart.count + exp
        // Strip leading zeros (each moves the decimal point left) and trailing zeros.
        while digits.hasPrefix("0") && digits.count > 1 {
            digits.removeFirst()
            pointPos -= 1
        }
        while digits.hasSuffix("0") && digits.count > 1 { digits.removeLast() }
        return (value < 0, digits, pointPos)
    }
}

/// One double formatted printf-style by the C library (`%g`, `%.2f`, `%.1fs`...: one conversion).
/// Foundation's String(format:) goes through CoreFoundation's formatter and sets up a locale on
/// first use, which a cache hit's summary line and every miss's routing reason paid for; the C
/// library gives the same text.
package func cFormat(_ format: String, _ value: Double) -> String {
    var buf = [CChar](repeating: 0, count: 64)
    let n = Int(repro_format_double(&buf, buf.count, format, value))
    if n < 0 { return "" }
    if n >= buf.count {
        buf = [CChar](repeating: 0, count: n + 1)
        _ = repro_format_double(&buf, buf.count, format, value)
    }
    return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Byte counts for people: `512 B`, `1.5 MiB`.
package enum ByteText {
    package static func format(_ n: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(n)
        var i = 0
        while v >= 1024 && i < units.count - 1 {
            v /= 1024
            i += 1
        }
        return i == 0 ? "\(n) B" : cFormat("%.1f ", v) + units[i]
    }
}
