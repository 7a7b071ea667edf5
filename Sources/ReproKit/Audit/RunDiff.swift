import Foundation
import ReproSupport
import ReproStore

/// `repro diff`: how two runs differ, in identity and in outputs.
public struct RunDiff: Sendable {
    public struct Field: Sendable {
        /// config, code, dirty, seed, solver, input, env, backend, host, executable, command
        public var kind: String
        public var field: String
        public var a: JSONValue
        public var b: JSONValue
        public var json: JSONValue { ["kind": .string(kind), "field": .string(field), "a": a, "b": b] }
    }

    public var runA: String
    public var runB: String
    public var identity: [Field]
    public var outputs: [OutputComparison]
    /// Outputs present in only one run, by name.
    public var onlyInA: [String]
    public var onlyInB: [String]

    public var json: JSONValue {
        [
            "run_a": .string(runA), "run_b": .string(runB), "identity": .array(identity.map(\.json)),
            "outputs": .array(outputs.map(\.json)), "only_in_a": .array(onlyInA.map { .string($0) }),
            "only_in_b": .array(onlyInB.map { .string($0) }),
            "same_key": .bool(identity.isEmpty),
        ]
    }

    public static func compare(_ a: RunRecord, _ b: RunRecord, store: Store) throws -> RunDiff {
        var fields = IdentityChanges.between(.init(a), .init(b)).map { Field(kind: $0.kind, field: $0.field, a: $0.old, b: $0.new) }
        // The recorded environment, beyond the declared `env` the config already compared.
        for c in JSONDiff.changes(a.envJSON, b.envJSON) where !c.path.hasPrefix("REPRO_") && !fields.contains(where: { $0.field == "env." + c.path }) {
            fields.append(Field(kind: "env", field: "env." + c.path, a: c.old ?? .null, b: c.new ?? .null))
        }
        let plain: [(String, String, String)] = [
            ("backend", a.backend, b.backend), ("host", a.host, b.host), ("os", a.os, b.os),
            ("executable", a.executablePath ?? "", b.executablePath ?? ""),
            ("executable sha256", a.executableSha256 ?? "", b.executableSha256 ?? ""), ("commit", a.commit, b.commit),
        ]
        for (name, x, y) in plain where x != y {
            fields.append(Field(kind: name.hasPrefix("executable") ? "executable" : name, field: name, a: .string(x), b: .string(y)))
        }
        let ia = a.interpreter?.json ?? .null, ib = b.interpreter?.json ?? .null
        for k in ["path", "version", "implementation", "environment", "prefix"] where ia[k] != ib[k] {
            fields.append(Field(kind: "interpreter", field: "interpreter." + k, a: ia[k] ?? .null, b: ib[k] ?? .null))
        }
        fields += try packageChanges(a, b, store: store)
        if a.command != b.command && !fields.contains(where: { $0.field.hasPrefix("command") || $0.field.hasPrefix("params") }) {
            fields.append(Field(kind: "command", field: "command", a: .array(a.command.map { .string($0) }), b: .array(b.command.map { .string($0) })))
        }

        let oa = Dictionary(a.outputs.map { ($0.name, $0) }, uniquingKeysWith: { x, _ in x })
        let ob = Dictionary(b.outputs.map { ($0.name, $0) }, uniquingKeysWith: { x, _ in x })
        var comparisons: [OutputComparison] = []
        for name in Set(oa.keys).intersection(ob.keys).sorted() {
            guard let x = oa[name], let y = ob[name] else { continue }
            if x.sha256 == y.sha256 {
                var c = OutputComparison(name: name, verdict: .identical, format: "sha256")
                c.sizes = (Int(x.size), Int(y.size))
                comparisons.append(c)
                continue
            }
            guard store.hasBlob(x.sha256), store.hasBlob(y.sha256) else {
                var c = OutputComparison(name: name, verdict: .divergent, format: "sha256")
                c.differences = [.init(location: "sha256 (outputs evicted, contents unavailable)", old: x.sha256, new: y.sha256)]
                c.differenceCount = 1
                comparisons.append(c)
                continue
            }
            comparisons.append(try OutputComparator.compare(name: name, x, y, store: store))
        }
        return RunDiff(
            runA: a.runId, runB: b.runId, identity: fields, outputs: comparisons,
            onlyInA: Set(oa.keys).subtracting(ob.keys).sorted(), onlyInB: Set(ob.keys).subtracting(oa.keys).sorted())
    }

    /// Packages added, removed or at another version between two runs' interpreters.
    static func packageChanges(_ a: RunRecord, _ b: RunRecord, store: Store) throws -> [Field] {
        guard let pa = a.packagesBlob, let pb = b.packagesBlob, pa != pb else { return [] }
        func parse(_ sha: String) throws -> [String: String] {
            var out: [String: String] = [:]
            for line in String(decoding: try store.readBlob(sha, limit: 16 << 20), as: UTF8.self).split(separator: "\n") {
                let parts = line.components(separatedBy: "==")
                out[parts[0].lowercased()] = parts.count > 1 ? parts[1] : ""
            }
            return out
        }
        let (x, y) = (try parse(pa), try parse(pb))
        return Set(x.keys).union(y.keys).sorted().compactMap { name in
            guard x[name] != y[name] else { return nil }
            return Field(kind: "package", field: "package " + name, a: x[name].map { .string($0) } ?? .null, b: y[name].map { .string($0) } ?? .null)
        }
    }
}
