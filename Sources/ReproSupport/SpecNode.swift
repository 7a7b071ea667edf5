import Yams

/// A parsed YAML/JSON tree that remembers where each value came from, so errors can name the
/// file and line, and keeps scalars as written until a field decides how to read them.
package indirect enum SpecNode: Sendable {
    case scalar(String, plain: Bool, origin: Origin)
    case sequence([SpecNode], origin: Origin)
    case mapping([(key: String, value: SpecNode)], origin: Origin)

    /// Where a value was written: a file and line, or a `--set` option.
    package struct Origin: Sendable, CustomStringConvertible {
        package var file: String
        package var line: Int?
        package var description: String { line.map { "\(file):\($0)" } ?? file }
        package init(file: String, line: Int? = nil) {
            self.file = file
            self.line = line
        }
    }

    package var origin: Origin {
        switch self {
        case .scalar(_, _, let o), .sequence(_, let o), .mapping(_, let o): return o
        }
    }

    package var kindName: String {
        switch self {
        case .scalar(let s, let plain, _): return plain ? YAMLCore.resolve(s).typeName : "string"
        case .sequence: return "list"
        case .mapping: return "mapping"
        }
    }

    /// Parses YAML (and therefore JSON) text. Scalars are resolved later, by YAML 1.2 rules.
    package static func parse(_ text: String, file: String) throws(ConfigError) -> SpecNode {
        let node: Node?
        do {
            // The basic resolver leaves every plain scalar untyped: Yams' default resolver
            // follows YAML 1.1, where 1e-6 is a string and `on` is a boolean.
            // Composed nodes only: no constructor maps (building Yams' default ones is a cache
            // hit's worth of type-metadata lookups), and UTF-8 named here (the default
            // reads the whole environment to look for an override).
            node = try Yams.compose(yaml: text, Resolver.basic, Constructor([:], [:], [:]), .utf8)
        } catch let error as YamlError {
            if case .duplicatedKeysInMapping(let duplicates, _) = error {
                throw ConfigError(at: file, "key '\(duplicates.joined(separator: "', '"))' appears more than once in one mapping; keep one")
            }
            throw ConfigError(at: file, "not valid YAML: \(describe(error)). Fix the syntax at that line.")
        } catch {
            throw ConfigError(at: file, "not valid YAML: \(error)")
        }
        guard let node else {
            return .mapping([], origin: Origin(file: file, line: 1))
        }
        var budget = maxNodes
        return try convert(node, file: file, depth: 0, budget: &budget)
    }

    /// Limits that keep any spec's cost bounded. YAML aliases are allowed (anchors are handy
    /// in sweeps), but every use is expanded and counted, so a few hundred bytes of nested
    /// aliases ("billion laughs") stop at the node limit instead of taking all memory.
    package static let maxNodes = 100_000
    package static let maxDepth = 64

    private static func describe(_ error: YamlError) -> String {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
            .composer(_, let problem, let mark, _):
            return "line \(mark.line), column \(mark.column): \(problem)"
        case .duplicatedKeysInMapping(let duplicates, _):
            return "duplicate key(s) \(duplicates.joined(separator: ", "))"
        default:
            return "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
        }
    }

    private static func convert(_ node: Node, file: String, depth: Int, budget: inout Int) throws(ConfigError) -> SpecNode {
        budget -= 1
        guard budget >= 0 else {
            throw ConfigError(
                "\(file): more than \(maxNodes) values once YAML aliases are expanded; a spec this large is refused "
                    + "(check for aliases that repeat each other, or split the data into an input file)")
        }
        guard depth <= maxDepth else {
            throw ConfigError(
                "\(file):\(node.mark?.line ?? 0): values nested more than \(maxDepth) levels deep; flatten them or move them to an input file")
        }
        switch node {
        case .scalar(let s):
            let plain = s.style == .plain || s.style == .any
            return .scalar(s.string, plain: plain, origin: Origin(file: file, line: s.mark?.line))
        case .sequence(let seq):
            var items: [SpecNode] = []
            for item in seq { items.append(try convert(item, file: file, depth: depth + 1, budget: &budget)) }
            return .sequence(items, origin: Origin(file: file, line: seq.mark?.line))
        case .mapping(let map):
            var pairs: [(key: String, value: SpecNode)] = []
            var seen = Set<String>()
            for (k, v) in map {
                guard case .scalar(let ks) = k else {
                    throw ConfigError("\(file):\(k.mark?.line ?? 0): a mapping key must be a plain word, not a list or mapping")
                }
                guard seen.insert(ks.string).inserted else {
                    throw ConfigError("\(file):\(ks.mark?.line ?? 0): key '\(ks.string)' appears more than once in one mapping; keep one")
                }
                pairs.append((ks.string, try convert(v, file: file, depth: depth + 1, budget: &budget)))
            }
            return .mapping(pairs, origin: Origin(file: file, line: map.mark?.line))
        case .alias:
            // Yams resolves aliases while composing; this case is not reached with its
            // composer, but an unresolved alias would be a spec we cannot read.
            throw ConfigError("\(file):\(node.mark?.line ?? 0): an unresolved YAML alias; write the value out")
        }
    }

    /// The value as JSON, scalars resolved by the YAML 1.2 core schema.
    package func toJSON(path: String) throws(ConfigError) -> JSONValue {
        switch self {
        case .scalar(let s, let plain, let origin):
            guard plain else { return .string(s) }
            let v = YAMLCore.resolve(s)
            if case .string = v, let problem = YAMLCore.unrepresentable(s) {
                throw ConfigError(at: origin, "\(path): \(problem)")
            }
            return v
        case .sequence(let items, _):
            var out: [JSONValue] = []
            for (i, item) in items.enumerated() { out.append(try item.toJSON(path: "\(path)[\(i)]")) }
            return .array(out)
        case .mapping(let pairs, _):
            var out: [String: JSONValue] = [:]
            for (k, v) in pairs { out[k] = try v.toJSON(path: path.isEmpty ? k : "\(path).\(k)") }
            return .object(out)
        }
    }

    /// A mapping's value for `key` (nil for a missing key or a node that is not a mapping).
    package func field(_ key: String) -> SpecNode? {
        guard case .mapping(let pairs, _) = self else { return nil }
        return pairs.last(where: { $0.key == key })?.value
    }

    /// Sets the value at a dotted path, creating mappings on the way (for `--set`).
    package mutating func set(path: [String], to value: SpecNode, option: String) throws(ConfigError) {
        guard let head = path.first else {
            self = value
            return
        }
        guard case .mapping(var pairs, let origin) = self else {
            throw ConfigError("--set \(option): '\(head)' is inside a \(kindName) (\(origin)), not a mapping; check the path")
        }
        if let idx = pairs.firstIndex(where: { $0.key == head }) {
            var child = pairs[idx].value
            if path.count > 1, case .scalar = child {
                child = .mapping([], origin: value.origin)
            }
            try child.set(path: Array(path.dropFirst()), to: value, option: option)
            pairs[idx].value = child
        } else {
            var child: SpecNode = .mapping([], origin: value.origin)
            try child.set(path: Array(path.dropFirst()), to: value, option: option)
            pairs.append((head, child))
        }
        self = .mapping(pairs, origin: origin)
    }
}

/// Scalar resolution by the YAML 1.2 core schema (not YAML 1.1's: `yes` and `0755` stay as
/// written, `1e-6` is a float).
package enum YAMLCore {
    /// A YAML 1.2 boolean, or nil.
    package static func bool(_ s: String) -> Bool? {
        if case .bool(let b) = resolve(s) { return b }
        return nil
    }

    package static func resolve(_ s: String) -> JSONValue {
        switch s {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        default: break
        }
        if isDecimalInt(s) {
            if let i = Int64(s.hasPrefix("+") ? String(s.dropFirst()) : s) { return .int(i) }
            return .string(s)  // too large: caught by unrepresentable()
        }
        if s.hasPrefix("0o"), let i = Int64(s.dropFirst(2), radix: 8) { return .int(i) }
        if s.hasPrefix("0x"), let i = Int64(s.dropFirst(2), radix: 16) { return .int(i) }
        if isFloat(s), let d = Double(s), d.isFinite { return .double(d) }
        return .string(s)
    }

    /// Why a plain scalar cannot be recorded as a number, or nil if it is just text.
    package static func unrepresentable(_ s: String) -> String? {
        if isDecimalInt(s) {
            return "integer \(s) does not fit in 64 bits; quote it to keep it as text, or write it as a float"
        }
        let lower = s.lowercased()
        if [".inf", "+.inf", "-.inf", ".nan"].contains(lower) {
            return "\(s) is not a finite number and cannot be recorded; use a finite value"
        }
        if isFloat(s) { return "\(s) overflows a 64-bit float; use a finite value" }
        return nil
    }

    private static func isDecimalInt(_ s: String) -> Bool {
        var u = Substring(s)
        if u.first == "-" || u.first == "+" { u = u.dropFirst() }
        return !u.isEmpty && u.allSatisfy { $0.isASCII && $0.isNumber }
    }

    /// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`
    private static func isFloat(_ s: String) -> Bool {
        var chars = Array(s.utf8)[...]
        if let f = chars.first, f == UInt8(ascii: "-") || f == UInt8(ascii: "+") { chars = chars.dropFirst() }
        func digits(_ c: inout ArraySlice<UInt8>) -> Int {
            var n = 0
            while let f = c.first, f >= 0x30 && f <= 0x39 { c = c.dropFirst(); n += 1 }
            return n
        }
        let intDigits = digits(&chars)
        var fracDigits = 0
        var hasDot = false
        if chars.first == UInt8(ascii: ".") {
            hasDot = true
            chars = chars.dropFirst()
            fracDigits = digits(&chars)
        }
        if intDigits == 0 && fracDigits == 0 { return false }
        if intDigits == 0 && !hasDot { return false }
        if let e = chars.first, e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            chars = chars.dropFirst()
            if let f = chars.first, f == UInt8(ascii: "-") || f == UInt8(ascii: "+") { chars = chars.dropFirst() }
            if digits(&chars) == 0 { return false }
        }
        return chars.isEmpty
    }
}

extension ConfigError {
    /// An error about the value written at `origin`; `key` is its key path when the error is
    /// about one value.
    package init(at origin: SpecNode.Origin, key: String? = nil, _ problem: String) {
        self.init(file: origin.file, line: origin.line, key: key, problem)
    }
}
