import Foundation

/// Splits a command string into words the way a POSIX shell would, with quotes and
/// backslashes, but without expansion of variables, globs or `~`.
public enum ShellWords {
    public struct SplitError: Error, Sendable { public let message: String }

    public static func split(_ s: String) throws(SplitError) -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var it = s.makeIterator()
        while let c = it.next() {
            switch c {
            case " ", "\t", "\n":
                if inWord { words.append(current); current = ""; inWord = false }
            case "'":
                inWord = true
                var closed = false
                while let d = it.next() {
                    if d == "'" { closed = true; break }
                    current.append(d)
                }
                guard closed else { throw SplitError(message: "unterminated single quote in \(s)") }
            case "\"":
                inWord = true
                var closed = false
                while let d = it.next() {
                    if d == "\"" { closed = true; break }
                    if d == "\\" {
                        guard let e = it.next() else { break }
                        if "\"\\$`\n".contains(e) { if e != "\n" { current.append(e) } } else { current.append("\\"); current.append(e) }
                        continue
                    }
                    current.append(d)
                }
                guard closed else { throw SplitError(message: "unterminated double quote in \(s)") }
            case "\\":
                inWord = true
                guard let e = it.next() else { throw SplitError(message: "trailing backslash in \(s)") }
                if e != "\n" { current.append(e) }
            default:
                inWord = true
                current.append(c)
            }
        }
        if inWord { words.append(current) }
        return words
    }
}

/// Durations such as `90s`, `30m`, `2h`, `1h30m`, `1d`, or a bare number of seconds.
public enum DurationText {
    public static func seconds(_ text: String) -> Double? {
        let t = text.trimmingCharacters(in: .whitespaces)
        if let d = Double(t), d.isFinite, d > 0 { return d }
        var total = 0.0
        var number = ""
        var sawUnit = false
        for c in t {
            if c.isNumber || c == "." { number.append(c); continue }
            guard let n = Double(number) else { return nil }
            switch c {
            case "s": total += n
            case "m": total += n * 60
            case "h": total += n * 3600
            case "d": total += n * 86400
            default: return nil
            }
            number = ""
            sawUnit = true
        }
        guard number.isEmpty, sawUnit, total > 0 else { return nil }
        return total
    }
}

extension DurationText {
    /// `2h`, `1h30m`, `45s`, `1.5s`.
    public static func format(_ seconds: Double) -> String {
        if seconds < 60 {
            return seconds == seconds.rounded() ? "\(Int(seconds))s" : cFormat("%.1fs", seconds)
        }
        var s = Int(seconds.rounded())
        var out = ""
        if s >= 86400 { out += "\(s / 86400)d"; s %= 86400 }
        if s >= 3600 { out += "\(s / 3600)h"; s %= 3600 }
        if s >= 60 { out += "\(s / 60)m"; s %= 60 }
        if s > 0 { out += "\(s)s" }
        return out
    }
}
