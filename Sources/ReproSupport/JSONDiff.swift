/// Field-by-field differences between two JSON values, by path (`params.a.b`, `list[2]`).
package enum JSONDiff {
    package struct Change: Sendable, Equatable {
        package var path: String
        /// nil when the path does not exist on that side.
        package var old: JSONValue?
        package var new: JSONValue?

        package var json: JSONValue { ["path": .string(path), "old": old ?? .null, "new": new ?? .null] }
    }

    /// Leaf values by path; empty containers are leaves too.
    package static func flatten(_ v: JSONValue, prefix: String = "") -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        func walk(_ v: JSONValue, _ path: String) {
            switch v {
            case .object(let o) where !o.isEmpty:
                for (k, child) in o { walk(child, path.isEmpty ? k : path + "." + k) }
            case .array(let a) where !a.isEmpty:
                for (i, child) in a.enumerated() { walk(child, path + "[\(i)]") }
            default:
                out[path] = v
            }
        }
        walk(v, prefix)
        return out
    }

    /// Changes from `a` to `b`, sorted by path.
    package static func changes(_ a: JSONValue, _ b: JSONValue) -> [Change] {
        let fa = flatten(a), fb = flatten(b)
        var out: [Change] = []
        for path in Set(fa.keys).union(fb.keys).sorted() where fa[path] != fb[path] {
            out.append(Change(path: path, old: fa[path], new: fb[path]))
        }
        return out
    }
}
