import ArgumentParser
import Foundation
import ReproKit
import ReproSupport
import ReproStore

struct Log: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "log", abstract: "List recorded runs, newest first.")

    @Option(name: .short, help: "Show at most this many runs.")
    var n: Int = 20

    @Flag(help: "Only runs whose key has been checked by `repro verify`.")
    var verified = false

    @Option(help: "Only runs of the spec with this name.")
    var name: String?

    @Option(help: "Only runs with this status (running, succeeded, failed, interrupted).")
    var status: String?

    @Option(help: "Only runs started within this long, e.g. 2h, 7d.")
    var since: String?

    @Option(name: .customLong("param"), help: ArgumentHelp(
        "Add a column with this parameter (params.NAME, or a dotted path such as solver.rtol or seed); repeatable.",
        valueName: "name"))
    var params: [String] = []

    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard n > 0 else { throw ValidationError("-n must be at least 1") }
        if let status, RunStatus(rawValue: status) == nil {
            throw ValidationError("--status '\(status)' is not a run status; use running, succeeded, failed or interrupted")
        }
        if let since, DurationText.seconds(since) == nil {
            throw ValidationError("--since '\(since)' is not a duration; write e.g. 90m, 12h or 30d")
        }
    }

    /// A column's value: `population_size` means params.population_size; a path starting
    /// with a top-level config key (solver, env, seed, ...) is taken as it is.
    static func value(_ r: RunRecord, _ column: String) -> JSONValue? {
        let path = column.split(separator: ".").map(String.init)
        if let head = path.first, ["params", "solver", "env"].contains(head) { return r.config.value(atPath: path) }
        if column == "seed" { return .int(r.seed) }
        return r.config.value(atPath: ["params"] + path)
    }

    func run() throws {
        try reporting {
            let store = try openStore()
            let filter = RunFilter(
                name: name, status: status.flatMap(RunStatus.init(rawValue:)),
                since: since.flatMap(DurationText.seconds).map { Clock.now() - $0 }, verified: verified)
            let runs = try store.runs(matching: filter, limit: n)
            if output.json {
                Console.json(.array(runs.map { r in
                    [
                        "run_id": .string(r.runId), "started_at": .string(r.startedAt), "name": .string(r.name),
                        "key": .string(r.key), "commit": .string(r.commit), "dirty": .bool(r.dirty),
                        "status": .string(r.status.rawValue), "backend": .string(r.backend),
                        "duration_s": r.durationS.map { .double($0) } ?? .null, "hits": .int(Int64(r.hitCount)),
                        "cost": r.cost.map { .double($0) } ?? .null, "fallback": .bool(r.fallback != nil),
                        "params": .object(Dictionary(uniqueKeysWithValues: params.map { ($0, Log.value(r, $0) ?? .null) })),
                    ]
                }))
                return
            }
            guard !runs.isEmpty else {
                Console.err("no runs recorded yet")
                return
            }
            var rows = [["RUN", "STARTED", "NAME", "KEY", "COMMIT", "STATUS", "BACKEND", "DURATION", "COST"] + params.map { $0.uppercased() } + ["HITS"]]
            for r in runs {
                let cells = params.map { p -> String in
                    guard let v = Log.value(r, p) else { return "-" }
                    if case .string(let s) = v { return s }
                    return v.canonical
                }
                rows.append(
                    [
                        r.runId, String(r.startedAt.prefix(19)).replacingOccurrences(of: "T", with: " "), r.name, r.shortKey,
                        String(r.commit.prefix(10)) + (r.dirty ? "+" : ""), r.status.rawValue, r.backend + (r.fallback != nil ? " (fallback)" : ""),
                        Format.seconds(r.durationS), r.cost.map { String(format: "%.4f", $0) } ?? "-",
                    ] + cells + [String(r.hitCount)])
            }
            Console.out(Table.render(rows))
        }
    }
}

enum Table {
    static func render(_ rows: [[String]]) -> String {
        let widths = (0..<(rows.first?.count ?? 0)).map { c in rows.map { $0[c].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
