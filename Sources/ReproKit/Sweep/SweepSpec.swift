import Foundation
import ReproExecution
import ReproSupport

/// A sweep: a base spec plus the points to run it at.
///
/// ```yaml
/// base: sim.yaml                 # relative to this file; or `spec:` with the spec inline
/// grid: {params.population_size: [100, 1000], solver.rtol: [1e-6, 1e-8]}   # cartesian product
/// zip: {params.a: [1, 2, 3], params.b: [4, 5, 6]}                             # taken together
/// list: [{params.x: 1}, {params.x: 2, seed: 5}]                               # explicit points
/// replicates: 3                  # each point N times, each with its own derived seed
/// backend: slurm                 # default backend for the points (else the spec's)
/// ```
/// The points are grid × zip × list (each absent part counts once), times the replicates.
public struct SweepSpec: Sendable {
    typealias Assignment = (path: [String], value: SpecNode)

    var base: SpecNode
    var baseFile: String
    /// The factors of the point product (a grid axis, the zip, the list): each a list of
    /// alternatives. A point is one alternative of each, the last factor varying fastest; points
    /// are computed from their index, never all held (a large sweep's would take tens of MB).
    var factors: [[[Assignment]]]
    /// How many points (before replicates).
    let pointCount: Int
    /// The base spec validated once, when it is valid on its own: a point then validates only
    /// the top-level fields it changes (nil: each point is validated whole).
    var baseSpec: SimulationSpec?
    public var replicates: Int
    /// How many runs the sweep describes.
    public var count: Int { pointCount * replicates }
    public var backend: String?

    static let knownKeys = ["base", "spec", "grid", "zip", "list", "replicates", "backend"]
    /// The most runs (points x replicates) one sweep may describe.
    public static let maxRuns = 1_000_000

    /// Whether a file is a sweep (a mapping with `base:` or `spec:` and no `command:`).
    public static func isSweepFile(_ path: String) throws(ConfigError) -> Bool {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError("\(path) does not exist or cannot be read; pass a spec or a sweep file")
        }
        guard case .mapping(let pairs, _) = try SpecNode.parse(String(decoding: data, as: UTF8.self), file: path) else { return false }
        let keys = Set(pairs.map(\.key))
        return !keys.contains("command") && (keys.contains("base") || keys.contains("spec"))
    }

    public static func load(path: String) throws(ConfigError) -> SweepSpec {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError("sweep file \(path) does not exist or cannot be read")
        }
        let root = try SpecNode.parse(String(decoding: data, as: UTF8.self), file: path)
        guard case .mapping(let pairs, _) = root else {
            throw ConfigError(at: root.origin, "a sweep must be a mapping with `base:` (or `spec:`) and grid/zip/list/replicates")
        }
        var fields: [String: SpecNode] = [:]
        for (k, v) in pairs {
            guard knownKeys.contains(k) else {
                throw ConfigError(at: v.origin, "unknown key '\(k)' in the sweep; use \(knownKeys.joined(separator: ", "))")
            }
            fields[k] = v
        }
        let base: SpecNode
        let baseFile: String
        switch (fields["base"], fields["spec"]) {
        case (.some(let b), nil):
            guard case .scalar(let rel, _, _) = b else { throw ConfigError(at: b.origin, "base must be the path of a spec file") }
            let dir = (path as NSString).deletingLastPathComponent
            baseFile = rel.hasPrefix("/") ? rel : (dir.isEmpty ? rel : dir + "/" + rel)
            guard let text = FileManager.default.contents(atPath: baseFile) else {
                throw ConfigError(at: b.origin, "base spec \(baseFile) does not exist (it is relative to the sweep file)")
            }
            base = try SpecNode.parse(String(decoding: text, as: UTF8.self), file: baseFile)
        case (nil, .some(let s)):
            guard case .mapping = s else { throw ConfigError(at: s.origin, "spec must be a mapping (an inline simulation spec)") }
            base = s
            baseFile = path
        case (.some, .some):
            throw ConfigError(at: path, "give either `base:` or `spec:`, not both")
        case (nil, nil):
            throw ConfigError(at: path, "a sweep needs `base: sim.yaml` (relative to the sweep file) or an inline `spec:`")
        }

        var parts: [[[Assignment]]] = []
        if let g = fields["grid"] {
            guard case .mapping(let gp, _) = g else { throw ConfigError(at: g.origin, "grid must map dotted paths to lists of values") }
            for (k, v) in gp {
                guard case .sequence(let values, _) = v, !values.isEmpty else {
                    throw ConfigError(at: v.origin, key: "grid.\(k)", "must be a non-empty list of values")
                }
                let p = try dottedPath(k)
                parts.append(values.map { [(p, $0)] })
            }
        }
        if let z = fields["zip"] {
            guard case .mapping(let zp, _) = z, !zp.isEmpty else { throw ConfigError(at: z.origin, "zip must map dotted paths to lists") }
            var length: Int?
            var columns: [([String], [SpecNode])] = []
            for (k, v) in zp {
                guard case .sequence(let values, _) = v else { throw ConfigError(at: v.origin, key: "zip.\(k)", "must be a list") }
                if let l = length, l != values.count {
                    throw ConfigError(at: v.origin, "zip lists must have equal lengths; zip.\(k) has \(values.count), the first has \(l)")
                }
                length = values.count
                columns.append((try dottedPath(k), values))
            }
            parts.append((0..<(length ?? 0)).map { i in columns.map { ($0.0, $0.1[i]) } })
        }
        if let l = fields["list"] {
            guard case .sequence(let entries, _) = l else { throw ConfigError(at: l.origin, "list must be a list of mappings") }
            var points: [[Assignment]] = []
            for e in entries {
                guard case .mapping(let ep, _) = e else { throw ConfigError(at: e.origin, "each list entry must be a mapping of paths to values") }
                var a: [Assignment] = []
                for (k, v) in ep { a.append((try dottedPath(k), v)) }
                points.append(a)
            }
            parts.append(points)
        }
        var replicates = 1
        if let r = fields["replicates"] {
            guard case .scalar(let t, _, _) = r, let n = Int(t), n >= 1 else {
                throw ConfigError(at: r.origin, "replicates must be a whole number >= 1")
            }
            replicates = n
        }
        // Counted before anything is expanded: a 10-axis grid or a typo in `replicates` must
        // be a clear error, not an allocation that takes the machine down.
        let maxRuns = SweepSpec.maxRuns
        var total = replicates
        for part in parts {
            let (product, overflow) = total.multipliedReportingOverflow(by: part.count)
            guard !overflow, product <= maxRuns else {
                let sizes = parts.map { String($0.count) }.joined(separator: " x ")
                throw ConfigError(
                    "\(path): the sweep describes more than \(maxRuns) runs (\(sizes) points x \(replicates) replicate(s)), the "
                        + "most one sweep may hold; split it into several sweep files or reduce grid axes or replicates")
            }
            total = product
        }
        guard total <= maxRuns else {
            throw ConfigError(
                "\(path): replicates: \(replicates) is more than the \(maxRuns) runs one sweep may hold; use a smaller number")
        }
        var backend: String?
        if let b = fields["backend"] {
            guard case .scalar(let t, _, _) = b, Backends.isValidName(t) else {
                throw ConfigError(
                    "\(b.origin): backend must name a backend: \(Backends.builtIn.joined(separator: ", ")) or one under `backends:` in .repro.yaml")
            }
            backend = t
        }
        return SweepSpec(
            base: base, baseFile: baseFile, factors: parts, pointCount: parts.reduce(1) { $0 * $1.count },
            baseSpec: try? SpecLoader.validate(base, file: baseFile), replicates: replicates, backend: backend)
    }

    static func dottedPath(_ dotted: String) throws(ConfigError) -> [String] {
        let p = dotted.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !p.isEmpty, p.allSatisfy({ !$0.isEmpty }), SpecLoader.knownKeys.contains(p[0]) else {
            throw ConfigError("'\(dotted)' is not a spec path such as params.population_size or solver.rtol")
        }
        return p
    }

    /// Every point as a validated spec, replicates last-varying. A replicate's seed is derived
    /// from its point's config hash and its index, so it is stable across re-runs.
    /// Points are validated on every core (the first failing point, in order, is the error).
    public func specs() throws(ConfigError) -> [SimulationSpec] {
        try specs(points: 0..<pointCount)
    }

    /// The assignments of point `index` (in the order the factors were written).
    func assignments(ofPoint index: Int) -> [Assignment] {
        var out: [Assignment] = []
        var rest = index
        var digits = [Int](repeating: 0, count: factors.count)
        for f in factors.indices.reversed() {
            digits[f] = rest % factors[f].count
            rest /= factors[f].count
        }
        for f in factors.indices { out += factors[f][digits[f]] }
        return out
    }

    /// The validated spec of one point (no replicate seed applied).
    private func pointSpec(_ index: Int) throws(ConfigError) -> SimulationSpec {
        let assignments = assignments(ofPoint: index)
        // The usual point sets only params (`params.NAME`) over a valid base: the values go
        // into the base spec's params as validation converts them, and the estimate is checked
        // against them; nothing else can change, and the node is not rewritten (setting a name
        // in a valid base's params mapping cannot fail). SweepTests compare it with revalidating.
        if let baseSpec, assignments.allSatisfy({ $0.path.count == 2 && $0.path[0] == "params" }) {
            var spec = baseSpec
            for a in assignments { spec.params[a.path[1]] = try a.value.toJSON(path: "params." + a.path[1]) }
            spec.estimate = try SpecLoader.estimate(base.field("estimate"), params: spec.params)
            return spec
        }
        var node = base
        for a in assignments { try node.set(path: a.path, to: a.value, option: a.path.joined(separator: ".")) }
        if let baseSpec {
            return try SpecLoader.revalidate(baseSpec, node, changed: Set(assignments.map { $0.path[0] }), file: baseFile)
        }
        return try SpecLoader.validate(node, file: baseFile)
    }

    /// Replicate `r` of a point: the seed derived from the point's config hash and `r`.
    private func replicate(_ spec: SimulationSpec, _ r: Int) -> SimulationSpec {
        var s = spec
        s.seed = .fixed(Hashing.seed(fromHex: Hashing.sha256Hex("\(spec.configHash):replicate:\(r)")))
        return s
    }

    /// The spec of run `index` (point `index / replicates`, its replicate `index % replicates`),
    /// exactly as `specs()` gives it: a large sweep regenerates a point when it is dispatched.
    func spec(run index: Int) throws(ConfigError) -> SimulationSpec {
        let spec = try pointSpec(index / replicates)
        return replicates == 1 ? spec : replicate(spec, index % replicates)
    }

    /// The specs of some points (with their replicates), in order: a large sweep is prepared
    /// a block at a time, so its specs are never all held at once.
    func specs(points range: Range<Int>) throws(ConfigError) -> [SimulationSpec] {
        let validated = try ParallelMap.map(range.count) { j throws(ConfigError) in try pointSpec(range.lowerBound + j) }
        if replicates == 1 { return validated }
        var out: [SimulationSpec] = []
        out.reserveCapacity(range.count * replicates)
        for spec in validated {
            for r in 0..<replicates { out.append(replicate(spec, r)) }
        }
        return out
    }
}
