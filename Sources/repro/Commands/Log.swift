import ArgumentParser
import Foundation
import ReproKit

struct Log: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List recorded runs, newest first.")

    @Option(name: .short, help: "Show at most this many runs.")
    var n: Int = 20

    @Flag(help: "Only runs whose key has been checked by `repro verify`.")
    var verified = false

    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard n > 0 else { throw ValidationError("-n must be at least 1") }
    }

    func run() throws {
        try reporting {
            let store = try openStore()
            var runs = try store.recentRuns(limit: verified ? max(n, 10_000) : n)
            if verified {
                let keys = try store.verifiedKeys()
                runs = Array(runs.filter { keys.contains($0.key) }.prefix(n))
            }
            if output.json {
                Console.json(.array(runs.map { r in
                    [
                        "run_id": .string(r.runId), "started_at": .string(r.startedAt), "name": .string(r.name),
                        "key": .string(r.key), "commit": .string(r.commit), "dirty": .bool(r.dirty),
                        "status": .string(r.status.rawValue), "backend": .string(r.backend),
                        "duration_s": r.durationS.map { .double($0) } ?? .null, "hits": .int(Int64(r.hitCount)),
                    ]
                }))
                return
            }
            guard !runs.isEmpty else {
                Console.err("no runs recorded yet")
                return
            }
            var rows = [["RUN", "STARTED", "NAME", "KEY", "COMMIT", "STATUS", "BACKEND", "DURATION", "HITS"]]
            for r in runs {
                rows.append([
                    r.runId, String(r.startedAt.prefix(19)).replacingOccurrences(of: "T", with: " "), r.name, r.shortKey,
                    String(r.commit.prefix(10)) + (r.dirty ? "+" : ""), r.status.rawValue, r.backend,
                    Format.seconds(r.durationS), String(r.hitCount),
                ])
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
