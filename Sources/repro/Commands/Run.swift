import ArgumentParser
import Foundation
import ReproKit
import ReproSupport
import ReproStore

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run",
        abstract: "Run a simulation spec, or serve it from cache when the same identity already ran.")

    @Argument(help: "The simulation spec (YAML or JSON).")
    var config: String

    @OptionGroup var setOptions: SetOptions
    var overrides: [String] { setOptions.values }

    @Flag(help: "Run even if a succeeded run with the same key is in the store.")
    var noCache = false

    @Option(help: "Directory for the outputs (default: results/<name>/<key prefix>/).")
    var out: String?

    @OptionGroup var dispatch: DispatchOptions

    @Flag(help: "With a scheduler: return after submission; `repro wait RUN` picks it up.")
    var detach = false

    @Flag(help: "Show the key, cache state, estimate, chosen backend and cost (as `repro plan`); run nothing.")
    var dryRun = false

    @Flag(help: "After a backend failure, fail instead of falling back to local.")
    var noFallback = false

    @OptionGroup var output: OutputOptions

    func run() throws {
        var request = RunRequest(specPath: config, environment: ProcessInfo.processInfo.environment)
        request.overrides = overrides
        request.noCache = noCache
        request.allowDirty = dispatch.allowDirty
        request.outDir = out
        request.backend = dispatch.backend
        request.detach = detach
        request.overBudget = dispatch.overBudget
        request.fallback = !noFallback
        try Run.perform(request, dryRun: dryRun, json: output.json)
    }

    /// The command's work. Also reached without ArgumentParser for a plain `repro run SPEC`
    /// (Repro.main), whose request is RunRequest's defaults, as every option's default is.
    static func perform(_ request: RunRequest, dryRun: Bool = false, json: Bool = false) throws {
        var request = request
        let detach = request.detach
        Signals.forwardToReproKit()
        try reporting {
            request.confirmCancel = Signals.confirmCancel
            request.ask = Prompt.choose
            if dryRun {
                let plan = try Runner(request, logger: Console.logger).dryRun()
                if json { Console.json(plan.json) } else { Console.out(PlanText.run(plan)) }
                return
            }
            let outcome = try Runner(request, logger: Console.logger).run()
            if json {
                Console.json(outcome.json)
            } else {
                Console.out(RunSummary.text(outcome))
            }
            switch outcome.record.status {
            case .succeeded: return
            case .running where detach: return
            case .interrupted, .running: throw ExitCode(130)
            case .failed: throw ExitCode(1)
            }
        }
    }
}

/// The few lines `repro run` prints.
enum RunSummary {
    /// What a miss did, in words that fit its state: a detached run has no duration yet, and
    /// one that never started did not "run in 0ms".
    static func missLine(_ r: RunRecord) -> String {
        switch r.status {
        case .running:
            return "cache miss: submitted\(r.jobId.map { " as job \($0)" } ?? ""), still running; `repro wait \(r.runId)` collects it"
        case .failed where (r.durationS ?? 0) == 0:
            return "cache miss: the simulation did not start"
        case .failed: return "cache miss: failed after \(Format.seconds(r.durationS))"
        case .interrupted: return "cache miss: interrupted after \(Format.seconds(r.durationS))"
        case .succeeded: return "cache miss: ran in \(Format.seconds(r.durationS))"
        }
    }

    static func text(_ o: RunOutcome) -> String {
        let r = o.record
        var lines: [String] = []
        let cache = o.cache == .hit
            ? "cache hit: served from run \(r.runId) (computed \(r.finishedAt ?? "?"), took \(Format.seconds(r.durationS)))"
                + (r.origin.map { " pulled from \($0.remote), \($0.trustedAs)" } ?? "")
            : missLine(r)
        lines.append("\(r.name)  key \(r.shortKey)  \(cache)")
        lines.append("  run      \(r.runId)  \(r.status.rawValue)\(r.exitCode.map { " (exit \($0))" } ?? "")")
        if let m = r.message { lines.append("  reason   \(m)") }
        lines.append("  commit   \(r.commit.prefix(12)) \(r.dirty ? "dirty (\(r.dirtyFiles.count) file(s), patch stored)" : "clean")  \(r.commitSummary)")
        lines.append("  seed     \(r.seed)   rtol \(Format.number(r.solver["rtol"]))   atol \(Format.number(r.solver["atol"]))")
        lines.append("  backend  \(r.backend) on \(r.host)\(r.jobId.map { ", job \($0)" } ?? "")")
        if let why = r.routing?.reason, o.cache == .miss { lines.append("  routing  \(why)") }
        if let f = r.fallback { lines.append("  FALLBACK \(f.from) failed (\(f.reason)); ran on \(f.to)") }
        if let c = r.cost, o.cache == .miss { lines.append("  cost     \(cFormat("%.4f", c)) (\(r.attempts.count) attempt\(r.attempts.count == 1 ? "" : "s"))") }
        if let dir = o.outputsDir {
            lines.append("  outputs  \(Format.path(dir))/ (\(r.outputs.count) file\(r.outputs.count == 1 ? "" : "s"))")
        }
        return lines.joined(separator: "\n")
    }
}
