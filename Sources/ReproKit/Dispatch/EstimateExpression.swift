import Foundation
import ReproSupport

/// `estimate: {seconds: "params.population_size * 0.5 * len(params.pathways)"}`: a small
/// arithmetic expression over a spec's params, parsed here (never evaluated by a shell or an
/// interpreter). Grammar: numbers, `params.a.b` references to numbers, `len(params.x)` of a
/// list, string or mapping, `+ - * /`, unary minus and parentheses.
public struct EstimateExpression: Sendable {
    public let text: String

    indirect enum Node: Sendable {
        case number(Double)
        case param([String], column: Int)
        case len([String], column: Int)
        case negate(Node)
        case binary(Character, Node, Node, column: Int)
    }

    let root: Node

    /// Parses `text`; a bad token is an error naming it and its column (1-based).
    public init(_ text: String, origin: String) throws(ConfigError) {
        self.text = text
        var p = Parser(chars: Array(text), origin: origin, text: text)
        let node = try p.expression()
        p.skipSpaces()
        if p.i < p.chars.count { throw p.error("unexpected '\(p.chars[p.i])'") }
        root = node
    }

    /// The value for these params; an unknown or non-numeric param is an error naming it.
    public func evaluate(params: [String: JSONValue], origin: String) throws(ConfigError) -> Double {
        let v = try eval(root, params: params, origin: origin)
        guard v.isFinite, v >= 0 else {
            throw ConfigError(at: origin, key: "estimate.seconds", "'\(text)' gives \(v) for these params; an estimate must be a finite number of seconds >= 0")
        }
        return v
    }

    private func lookup(_ path: [String], params: [String: JSONValue], origin: String, column: Int) throws(ConfigError) -> JSONValue {
        var v: JSONValue = .object(params)
        for (i, k) in path.enumerated() {
            guard let next = v[k] else {
                let known = (i == 0 ? params.keys.sorted() : (v.objectValue?.keys.sorted() ?? []))
                throw ConfigError(
                    "\(origin): estimate.seconds '\(text)': unknown param 'params.\(path.joined(separator: "."))' at column \(column)"
                        + (known.isEmpty ? "" : "; known: \(known.joined(separator: ", "))"))
            }
            v = next
        }
        return v
    }

    private func eval(_ n: Node, params: [String: JSONValue], origin: String) throws(ConfigError) -> Double {
        switch n {
        case .number(let d): return d
        case .param(let path, let column):
            let v = try lookup(path, params: params, origin: origin, column: column)
            guard let d = v.numberValue else {
                throw ConfigError(
                    "\(origin): estimate.seconds '\(text)': params.\(path.joined(separator: ".")) at column \(column) is \(v.canonical.prefix(40)), not a number"
                        + (v.arrayValue != nil ? "; use len(params.\(path.joined(separator: "."))) for its length" : ""))
            }
            return d
        case .len(let path, let column):
            let v = try lookup(path, params: params, origin: origin, column: column)
            if let a = v.arrayValue { return Double(a.count) }
            if let o = v.objectValue { return Double(o.count) }
            if let s = v.stringValue { return Double(s.count) }
            throw ConfigError(at: origin, key: "estimate.seconds", "'\(text)': len() at column \(column) needs a list, string or mapping")
        case .negate(let x): return -(try eval(x, params: params, origin: origin))
        case .binary(let op, let a, let b, let column):
            let x = try eval(a, params: params, origin: origin)
            let y = try eval(b, params: params, origin: origin)
            switch op {
            case "+": return x + y
            case "-": return x - y
            case "*": return x * y
            default:
                guard y != 0 else { throw ConfigError(at: origin, key: "estimate.seconds", "'\(text)': division by zero at column \(column)") }
                return x / y
            }
        }
    }

    struct Parser {
        var chars: [Character]
        var i = 0
        let origin: String
        let text: String

        init(chars: [Character], origin: String, text: String) {
            self.chars = chars
            self.origin = origin
            self.text = text
        }

        func error(_ what: String, at column: Int? = nil) -> ConfigError {
            ConfigError(at: origin, key: "estimate.seconds", "'\(text)': \(what) at column \((column ?? i) + 1); write e.g. \"params.n * 0.5 * len(params.pathways)\"")
        }

        mutating func skipSpaces() { while i < chars.count, chars[i] == " " || chars[i] == "\t" { i += 1 } }

        mutating func expression() throws(ConfigError) -> Node {
            var left = try term()
            while true {
                skipSpaces()
                guard i < chars.count, chars[i] == "+" || chars[i] == "-" else { return left }
                let op = chars[i]
                let col = i
                i += 1
                left = .binary(op, left, try term(), column: col + 1)
            }
        }

        mutating func term() throws(ConfigError) -> Node {
            var left = try factor()
            while true {
                skipSpaces()
                guard i < chars.count, chars[i] == "*" || chars[i] == "/" else { return left }
                let op = chars[i]
                let col = i
                i += 1
                left = .binary(op, left, try factor(), column: col + 1)
            }
        }

        mutating func factor() throws(ConfigError) -> Node {
            skipSpaces()
            guard i < chars.count else { throw error("the expression ends too early") }
            let c = chars[i]
            if c == "-" {
                i += 1
                return .negate(try factor())
            }
            if c == "+" {
                i += 1
                return try factor()
            }
            if c == "(" {
                i += 1
                let inner = try expression()
                skipSpaces()
                guard i < chars.count, chars[i] == ")" else { throw error("missing ')'") }
                i += 1
                return inner
            }
            if c.isNumber || c == "." {
                let start = i
                while i < chars.count, chars[i].isNumber || chars[i] == "." || chars[i] == "e" || chars[i] == "E"
                    || ((chars[i] == "-" || chars[i] == "+") && i > start && (chars[i - 1] == "e" || chars[i - 1] == "E"))
                {
                    i += 1
                }
                guard let d = Double(String(chars[start..<i])) else { throw error("'\(String(chars[start..<i]))' is not a number", at: start) }
                return .number(d)
            }
            if c.isLetter || c == "_" {
                let start = i
                let name = identifierPath()
                if name == ["len"] {
                    skipSpaces()
                    guard i < chars.count, chars[i] == "(" else { throw error("len needs parentheses: len(params.x)") }
                    i += 1
                    skipSpaces()
                    let argStart = i
                    let path = identifierPath()
                    guard path.first == "params", path.count >= 2 else { throw error("len() takes a param such as params.pathways", at: argStart) }
                    skipSpaces()
                    guard i < chars.count, chars[i] == ")" else { throw error("missing ')' after len(") }
                    i += 1
                    return .len(Array(path.dropFirst()), column: argStart + 1)
                }
                guard name.first == "params", name.count >= 2 else {
                    throw error("unknown name '\(name.joined(separator: "."))' (only params.NAME, numbers and len() are allowed)", at: start)
                }
                return .param(Array(name.dropFirst()), column: start + 1)
            }
            throw error("unexpected '\(c)'")
        }

        mutating func identifierPath() -> [String] {
            var parts: [String] = []
            var current = ""
            while i < chars.count {
                let c = chars[i]
                if c.isLetter || c.isNumber || c == "_" {
                    current.append(c)
                } else if c == ".", !current.isEmpty {
                    parts.append(current)
                    current = ""
                } else {
                    break
                }
                i += 1
            }
            if !current.isEmpty { parts.append(current) }
            return parts
        }
    }
}
