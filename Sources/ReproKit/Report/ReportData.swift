import Foundation
import ReproSupport
import ReproGit
import ReproStore

/// What `repro report` was asked for.
public struct ReportRequest: Sendable {
    /// Sweep files, spec files or run ids; none: every run in the `since` window.
    public var targets: [String] = []
    /// Only runs started within this many seconds (nil: any time).
    public var since: Double?
    /// Numeric outputs to tabulate and plot: `FILE:$.json.path` or `FILE.csv:column` (last row).
    public var ys: [String] = []
    public var environment: [String: String]

    public init(environment: [String: String]) { self.environment = environment }
}

/// Everything the report shows, gathered from the store once, in a fixed order (so the same
/// store gives the same bytes).
public struct ReportData: Sendable {
    public struct Point: Sendable {
        public var run: RunRecord
        /// Flattened scalar params (`population_size`, `pathways[0]`, ...).
        public var params: [String: JSONValue]
        /// The declared outputs' values, by selector (nil: missing or not a number).
        public var ys: [String: Double?]
    }

    public var title: String
    public var points: [Point]
    /// Params whose value differs between points, in name order.
    public var varied: [String]
    public var ys: [String]
    public var hitsPerDay: [String: Int]
    public var attestations: [String: Int]
    public var verifications: [JSONValue]
    public var lineage: [Lineage.Edge]
    /// Above this many runs the per-run sections are aggregated (the file stays small).
    public static let perRunLimit = 10_000
}

/// Reads a target list into report data.
public enum ReportBuilder {
    public static func build(_ request: ReportRequest, store: Store, repo: GitRepository) throws -> ReportData {
        var runs: [RunRecord] = []
        var ys = request.ys
        var titles: [String] = []
        for target in request.targets {
            if FileManager.default.fileExists(atPath: target) {
                if let sweep = try? SweepSpec.load(path: target) {
                    // The sweep's points by their config (params, seed, solver, ...): the newest
                    // result of each, whatever the state of the work tree now.
                    let specs = try sweep.specs()
                    runs += try store.newestRuns(forConfigHashes: Array(Set(specs.map(\.configHash))).sorted())
                    if ys.isEmpty, let base = specs.first { ys = base.reportY }
                    titles.append((target as NSString).lastPathComponent)
                    continue
                }
                let spec = try SpecLoader.load(path: target)
                runs += try store.runs(matching: RunFilter(name: spec.name, since: request.since.map { Clock.now() - $0 }), limit: 1_000_000)
                if ys.isEmpty { ys = spec.reportY }
                titles.append(spec.name)
            } else {
                runs.append(try store.run(matching: target))
                titles.append(target)
            }
        }
        if request.targets.isEmpty {
            runs = try store.runs(matching: RunFilter(since: request.since.map { Clock.now() - $0 }), limit: 1_000_000)
            titles = ["all runs" + (request.since.map { " of the last " + DurationText.format($0) } ?? "")]
        }
        var seen = Set<String>()
        runs = runs.filter { seen.insert($0.runId).inserted }.sorted { $0.runId < $1.runId }

        var points: [ReportData.Point] = []
        var values: [String: Set<String>] = [:]
        for r in runs {
            var params: [String: JSONValue] = [:]
            for (k, v) in JSONDiff.flatten(r.config["params"] ?? .object([:])) { params[k] = v }
            for (k, v) in params { values[k, default: []].insert(v.canonical) }
            var yv: [String: Double?] = [:]
            for y in ys { yv[y] = r.status == .succeeded ? value(y, of: r, store: store) : nil }
            points.append(.init(run: r, params: params, ys: yv))
        }
        let varied = values.filter { $0.value.count > 1 }.keys.sorted()
        let ids = runs.map(\.runId)
        let lineage = runs.count <= ReportData.perRunLimit
            ? try runs.flatMap { try Lineage(store: store, repoRoot: repo.workdir).parents(of: $0) } : []
        return ReportData(
            title: titles.joined(separator: ", "), points: points, varied: varied, ys: ys, hitsPerDay: try store.hitsPerDay(runIds: ids),
            attestations: try store.attestationCounts(runIds: ids), verifications: try store.verifications(forKeys: Array(Set(runs.map(\.key))).sorted()),
            lineage: lineage)
    }

    /// A declared output's number: `FILE:$.a.b[0]` from JSON, `FILE.csv:column` from a CSV's
    /// last row. nil when the output, the field or a number is not there.
    static func value(_ selector: String, of run: RunRecord, store: Store) -> Double? {
        guard let colon = selector.firstIndex(of: ":") else { return nil }
        let file = String(selector[..<colon])
        let path = String(selector[selector.index(after: colon)...])
        guard let out = run.outputs.first(where: { $0.name == file }), out.size <= 64 << 20,
            let bytes = try? store.readBlob(out.sha256, limit: 64 << 20)
        else { return nil }
        if file.lowercased().hasSuffix(".csv") {
            let rows = CSV.parse(String(decoding: bytes, as: UTF8.self), separator: ",")
            guard let header = rows.first, let col = header.firstIndex(of: path), let last = rows.dropFirst().last(where: { $0.count > col })
            else { return nil }
            return Double(last[col].trimmingCharacters(in: .whitespaces))
        }
        guard let json = try? JSONParser.parse(bytes) else { return nil }
        var key = path
        if key.hasPrefix("$.") { key.removeFirst(2) } else if key.hasPrefix("$") { key.removeFirst() }
        return JSONDiff.flatten(json)[key]?.numberValue
    }
}

/// Writes a file the user named (a report, an attestation) atomically: a failed write is an
/// error and a half-written file is never left behind.
public enum ReportFile {
    public static func write(_ html: String, to path: String) throws(StoreError) {
        try FileIO.writeAtomically(Array(html.utf8), to: path, sync: false)
    }
}
