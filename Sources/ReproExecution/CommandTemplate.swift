import ReproSupport

/// Fills `{params.a.b}`, `{solver.x}`, `{seed}`, `{rtol}`, `{atol}`, `{outdir}` and `{config}`
/// into command arguments. `{{` and `}}` stand for literal braces.
public enum CommandTemplate {
    public struct Context: Sendable {
        public var params: [String: JSONValue]
        public var solver: [String: JSONValue]
        public var seed: Int64
        public var outdir: String
        public var config: String
        package init(params: [String: JSONValue], solver: [String: JSONValue], seed: Int64, outdir: String, config: String) {
            self.params = params
            self.solver = solver
            self.seed = seed
            self.outdir = outdir
            self.config = config
        }
    }

    public static let placeholders = "{params.NAME}, {solver.NAME}, {seed}, {rtol}, {atol}, {outdir}, {config}"

    public static func render(_ argv: [String], _ ctx: Context) throws(ConfigError) -> [String] {
        var out: [String] = []
        for arg in argv { out.append(try render(arg, ctx)) }
        return out
    }

    static func render(_ arg: String, _ ctx: Context) throws(ConfigError) -> String {
        // Bytes, not String.contains: Foundation's substring search costs microseconds a call,
        // and every point of a sweep renders its command.
        guard arg.utf8.contains(where: { $0 == UInt8(ascii: "{") || $0 == UInt8(ascii: "}") }) else { return arg }
        var out = ""
        var chars = Array(arg)[...]
        while let c = chars.first {
            chars = chars.dropFirst()
            if c == "{" && chars.first == "{" { out.append("{"); chars = chars.dropFirst(); continue }
            if c == "}" && chars.first == "}" { out.append("}"); chars = chars.dropFirst(); continue }
            guard c == "{" else { out.append(c); continue }
            guard let close = chars.firstIndex(of: "}") else {
                throw ConfigError("command argument '\(arg)' has an unclosed '{'; write {{ for a literal brace")
            }
            let name = String(chars[chars.startIndex..<close])
            chars = chars[chars.index(after: close)...]
            out += try value(of: name, in: arg, ctx)
        }
        return out
    }

    private static func value(of name: String, in arg: String, _ ctx: Context) throws(ConfigError) -> String {
        switch name {
        case "seed": return String(ctx.seed)
        case "outdir": return ctx.outdir
        case "config": return ctx.config
        case "rtol", "atol":
            guard let v = ctx.solver[name] else {
                throw ConfigError("command uses {\(name)} but the spec sets no solver.\(name); add it under solver:")
            }
            return text(v)
        default:
            let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            if parts.count >= 2, parts[0] == "params" || parts[0] == "solver" {
                let root: JSONValue = .object(parts[0] == "params" ? ctx.params : ctx.solver)
                guard let v = root.value(atPath: Array(parts.dropFirst())) else {
                    throw ConfigError("command uses {\(name)} but the spec has no \(name); add it or fix the placeholder")
                }
                return text(v)
            }
            throw ConfigError("command argument '\(arg)' uses unknown placeholder {\(name)}; use one of \(placeholders)")
        }
    }

    /// Strings as they are; numbers in canonical form; lists and mappings as canonical JSON.
    package static func text(_ v: JSONValue) -> String {
        switch v {
        case .string(let s): return s
        default: return v.canonical
        }
    }
}
