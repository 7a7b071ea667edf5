import ReproSupport
import ReproStore

/// What changed in the parts of a run's identity that make up its cache key: config fields by
/// path, code paths with both object ids, the dirty patch, the resolved seed, input hashes.
/// `repro why` (a spec now vs an earlier run) and `repro diff` (two runs) both report these.
public enum IdentityChanges {
    public struct Change: Sendable {
        /// config, solver, env, seed, code, dirty, input
        public var kind: String
        public var field: String
        public var old: JSONValue
        public var new: JSONValue
    }

    /// The identity parts of one side.
    public struct Side {
        var config: JSONValue
        /// path -> git object id ("" or "absent" when not committed)
        var code: [String: String]
        var patch: String?
        var seed: Int64
        var inputs: [String: String]

        init(_ r: RunRecord) {
            config = r.config
            code = Dictionary(r.code.paths.map { ($0.path, $0.id) }, uniquingKeysWith: { a, _ in a })
            patch = r.patchBlob
            seed = r.seed
            inputs = Dictionary(r.inputs.map { ($0.path, $0.sha256) }, uniquingKeysWith: { a, _ in a })
        }

        init(config: JSONValue, identity: CodeIdentity, patchHash: String?, seed: Int64, inputs: [InputFile]) {
            self.config = config
            code = Dictionary(identity.entries.map { ($0.path, $0.id) }, uniquingKeysWith: { a, _ in a })
            patch = patchHash
            self.seed = seed
            self.inputs = Dictionary(inputs.map { ($0.path, $0.sha256) }, uniquingKeysWith: { a, _ in a })
        }
    }

    /// In the order a user thinks of them: config, code, dirt, seed, inputs.
    public static func between(_ a: Side, _ b: Side) -> [Change] {
        var out: [Change] = []
        for c in JSONDiff.changes(a.config, b.config) {
            let kind = c.path.hasPrefix("solver") ? "solver" : c.path.hasPrefix("env") ? "env" : c.path == "seed" ? "seed" : "config"
            out.append(Change(kind: kind, field: c.path, old: c.old ?? .null, new: c.new ?? .null))
        }
        for path in Set(a.code.keys).union(b.code.keys).sorted() where a.code[path] != b.code[path] {
            func id(_ v: String?) -> JSONValue { v.map { .string($0.isEmpty ? "absent" : $0) } ?? .null }
            out.append(Change(kind: "code", field: path, old: id(a.code[path]), new: id(b.code[path])))
        }
        if a.patch != b.patch { out.append(Change(kind: "dirty", field: "dirty patch", old: a.patch.json, new: b.patch.json)) }
        if a.seed != b.seed && !out.contains(where: { $0.field == "seed" }) {
            out.append(Change(kind: "seed", field: "seed (derived)", old: .int(a.seed), new: .int(b.seed)))
        }
        for path in Set(a.inputs.keys).union(b.inputs.keys).sorted() where a.inputs[path] != b.inputs[path] {
            out.append(Change(kind: "input", field: "input " + path, old: a.inputs[path].json, new: b.inputs[path].json))
        }
        return out
    }
}
