import ArgumentParser
import Foundation
import ReproKit
import ReproSupport

struct CostCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cost", abstract: "What runs cost (from their real durations and prices: in .repro.yaml), summed by backend or spec name.")

    @Option(help: "Only runs finished in this period, such as 30d or 12h (default: all).") var since: String?
    @Option(help: "Group by backend or name.") var by: String = "backend"
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if let since, DurationText.seconds(since) == nil { throw ValidationError("--since '\(since)' is not a duration; write e.g. 30d or 12h") }
        guard by == "backend" || by == "name" else { throw ValidationError("--by must be backend or name") }
    }

    func run() throws {
        try reporting {
            let w = try Workspace.open(
                from: FileManager.default.currentDirectoryPath, environment: ProcessInfo.processInfo.environment, needsRepository: false)
            let config = try StoreConfig.load(storeRoot: w.store.root, repoRoot: w.repo?.workdir)
            let cutoff = since.flatMap(DurationText.seconds).map { Clock.now() - $0 }
            var rows = try w.store.costSummary(since: cutoff, by: by)
            // Runs that ran before prices were set: priced now with today's table, and said so.
            var pricedNow: [String: (runs: Int, cost: Double)] = [:]
            for u in try w.store.unpricedRuns(since: cutoff, by: by) {
                guard let price = config.price(backend: u.backend) else { continue }
                let c = price.cost(seconds: u.seconds, cores: Router.cores(u.resources))
                pricedNow[u.group, default: (0, 0)].runs += 1
                pricedNow[u.group, default: (0, 0)].cost += c
            }
            for i in rows.indices {
                guard let p = pricedNow[rows[i].group] else { continue }
                rows[i].cost += p.cost
                rows[i].unpriced -= p.runs
            }
            let total = rows.reduce(0) { $0 + $1.cost }
            let pricedNowRuns = pricedNow.values.reduce(0) { $0 + $1.runs }
            let cur = config.orchestration.currency
            let month = try w.store.costSince(Clock.monthStart(Clock.now()))
            if output.json {
                Console.json([
                    "since": since.json, "by": .string(by), "currency": .string(cur), "total": .double(total), "this_month": .double(month),
                    "budget_per_month": config.orchestration.budgetPerMonth.map { .double($0) } ?? .null,
                    "groups": .array(rows.map {
                        [
                            by: .string($0.group), "runs": .int(Int64($0.runs)), "seconds": .double($0.seconds), "cost": .double($0.cost),
                            "unpriced_runs": .int(Int64($0.unpriced)), "priced_now_runs": .int(Int64(pricedNow[$0.group]?.runs ?? 0)),
                            "priced_now_cost": .double(pricedNow[$0.group]?.cost ?? 0),
                        ]
                    }),
                ])
                return
            }
            var table = [[by.uppercased(), "RUNS", "TIME", "COST", "UNPRICED"]]
            for r in rows {
                let mark = pricedNow[r.group] != nil ? " *" : ""
                table.append([r.group, String(r.runs), DurationText.format(r.seconds.rounded()), Money.format(r.cost, cur) + mark, String(r.unpriced)])
            }
            Console.out(Table.render(table))
            Console.out("total \(Money.format(total, cur))\(since.map { " in the last \($0)" } ?? ""); this month \(Money.format(month, cur))"
                + (config.orchestration.budgetPerMonth.map { " of \(Money.format($0, cur)) budgeted" } ?? ""))
            if pricedNowRuns > 0 {
                Console.out("* includes \(pricedNowRuns) run(s) that ran before their backend had a price: priced with today's prices: table "
                    + "(their durations and cores; staged bytes not counted)")
            }
            if rows.contains(where: { $0.unpriced > 0 }) {
                Console.out("unpriced runs ran on a backend with no entry under prices: in .repro.yaml")
            }
        }
    }
}
