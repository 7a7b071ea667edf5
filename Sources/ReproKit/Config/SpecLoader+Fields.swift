import Foundation
import ReproSupport

extension SpecLoader {
    // MARK: field helpers

    static func describe(_ v: JSONValue) -> String {
        switch v {
        case .string(let s): return "the string '\(s)'"
        default: return "\(v.canonical) (\(v.typeName))"
        }
    }

    static func string(_ node: SpecNode, key: String) throws(ConfigError) -> String {
        guard case .scalar(let s, _, _) = node else {
            throw ConfigError(at: node.origin, "\(key) must be a string, not a \(node.kindName)")
        }
        return s
    }

    /// A scalar's text as written (so `--cells 1000` and `OMP_NUM_THREADS: 1` pass through).
    static func scalarText(_ node: SpecNode, key: String) throws(ConfigError) -> String {
        guard case .scalar(let s, let plain, let origin) = node else {
            throw ConfigError(at: node.origin, "\(key) must be a single value, not a \(node.kindName)")
        }
        if plain, case .null = YAMLCore.resolve(s) {
            throw ConfigError(at: origin, "\(key) is empty; give it a value or remove it")
        }
        return s
    }

    static func stringList(_ node: SpecNode, key: String) throws(ConfigError) -> [String] {
        switch node {
        case .scalar(let s, _, _): return [s]
        case .sequence(let items, _):
            var out: [String] = []
            for (i, item) in items.enumerated() { out.append(try scalarText(item, key: "\(key)[\(i)]")) }
            return out
        case .mapping(_, let origin):
            throw ConfigError(at: origin, "\(key) must be a list of paths, not a mapping")
        }
    }

    /// Repo-relative paths: no absolute paths, no `..`; `./a/` is stored as `a`.
    static func pathList(_ node: SpecNode?, key: String, default def: [String]) throws(ConfigError) -> [String] {
        guard let node else { return def }
        var out = Set<String>()
        for (i, raw) in try stringList(node, key: key).enumerated() {
            guard let p = RepoPath.normalize(raw) else {
                throw ConfigError(
                    "\(node.origin): \(key)[\(i)] '\(raw)' must be a path relative to the repository root, without '..'")
            }
            out.insert(p)
        }
        if out.isEmpty { return def }
        return out.sorted()
    }

    static func isEnvName(_ s: String) -> Bool {
        guard let f = s.first, f == "_" || (f.isASCII && f.isLetter) else { return false }
        return s.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var prev = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var cur = [i] + Array(repeating: 0, count: b.count)
            for j in stride(from: 1, through: b.count, by: 1) {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            prev = cur
        }
        return prev[b.count]
    }
}
