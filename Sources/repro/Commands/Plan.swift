import ArgumentParser
import Foundation
import ReproKit
import ReproSupport

struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plan",
        abstract: "Where a spec or sweep would run and what it would cost: key, cache state, estimate and tier, backend and why. Runs nothing.")

    @Argument(help: "A simulation spec or a sweep file.") var file: String
    @OptionGroup var setOptions: SetOptions
    var overrides: [String] { setOptions.values }
    @OptionGroup var dispatch: DispatchOptions
    @Option(help: "Sweeps: the local pool size the burst rule assumes (default: the number of cores).") var jobs: Int?
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reporting {
            let env = ProcessInfo.processInfo.environment
            if try SweepSpec.isSweepFile(file) {
                var request = SweepRequest(sweepPath: file, environment: env)
                request.backend = dispatch.backend
                request.allowDirty = dispatch.allowDirty
                request.overBudget = dispatch.overBudget
                request.jobs = jobs
                let plan = try SweepRunner(request, logger: Console.logger, progress: { _, _ in }).plan()
                if output.json { Console.json(plan.json) } else { Console.out(PlanText.sweep(plan)) }
                return
            }
            var request = RunRequest(specPath: file, environment: env)
            request.overrides = overrides
            request.backend = dispatch.backend
            request.allowDirty = dispatch.allowDirty
            request.overBudget = dispatch.overBudget
            let plan = try Runner(request, logger: Console.logger).dryRun()
            if output.json { Console.json(plan.json) } else { Console.out(PlanText.run(plan)) }
            // `repro run` would refuse it: the plan fails as the run would, with the same code.
            if plan.budgetRefusal != nil { throw ExitCode(2) }
        }
    }
}

enum PlanText {
    static func run(_ p: RunPlan) -> String {
        let why = p.why.map { $0.hasPrefix("miss: ") ? String($0.dropFirst(6)) : $0 }
        var lines = ["\(p.name)  key \(p.key.prefix(12))  cache \(p.cache)\(why.map { " (\($0))" } ?? "")"]
        lines.append("  estimate  \(DurationText.format(p.estimate.seconds.rounded())) (\(p.estimate.tier.rawValue): \(p.estimate.detail))")
        lines.append("  backend   \(p.backend)  (\(p.routing.reason))")
        lines.append("  cost      \(p.costEstimate.map { Money.format($0, p.currency) } ?? "no price for \(p.routing.backend) (prices: in .repro.yaml)")")
        if let refusal = p.budgetRefusal { lines.append("  budget    REFUSED by `repro run`: \(refusal)") }
        return lines.joined(separator: "\n")
    }

    static func sweep(_ p: SweepPlan) -> String {
        var lines = ["\(p.points) point(s): \(p.hits) cache hit(s), \(p.toRun) to run"]
        for part in p.parts {
            lines.append(
                "  \(part.backend): \(part.points) point(s), about \(DurationText.format(part.wallSeconds.rounded())) wall time, \(part.cost.map { Money.format($0, p.currency) } ?? "unpriced")  (\(part.reason))")
        }
        if let t = p.totalCost { lines.append("  total estimated cost \(Money.format(t, p.currency))") }
        return lines.joined(separator: "\n")
    }
}

extension RunPlan {
    var backend: String { routing.backend }
}
