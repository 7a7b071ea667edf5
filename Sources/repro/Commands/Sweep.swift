import ArgumentParser
import Foundation
import ReproKit
import ReproSupport

struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sweep",
        abstract: "Run a spec over a grid, zipped lists, explicit points and replicates; cached points are skipped.")

    @Argument(help: "The sweep file (base: sim.yaml, grid:, zip:, list:, replicates:).")
    var sweep: String

    @OptionGroup var dispatch: DispatchOptions

    @Option(help: "Points run at once on the local backend (default: the number of cores).")
    var jobs: Int?

    @Flag(help: "Count the points and the cache hits; run nothing.") var dryRun = false
    @Flag(help: "Stop at the first failing point (cancelling the rest).") var failFast = false
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
    }

    func run() throws {
        var request = SweepRequest(sweepPath: sweep, environment: ProcessInfo.processInfo.environment)
        request.backend = dispatch.backend
        request.jobs = jobs
        request.dryRun = dryRun
        request.failFast = failFast
        request.allowDirty = dispatch.allowDirty
        request.overBudget = dispatch.overBudget
        try Sweep.perform(request, json: output.json)
    }

    /// The command's work. Also reached without ArgumentParser for a plain `repro sweep FILE`
    /// (Repro.main), whose request is SweepRequest's defaults, as every option's default is.
    static func perform(_ request: SweepRequest, json: Bool = false) throws {
        var request = request
        Signals.forwardToReproKit()
        try reporting {
            request.confirmCancel = Signals.confirmCancel
            let display = ProgressDisplay()
            let summary = try SweepRunner(request, logger: Console.logger, progress: display.show).run()
            if json {
                Console.json(summary.json)
            } else {
                var line = "\(summary.points) point\(summary.points == 1 ? "" : "s"): \(summary.hits) cache hit\(summary.hits == 1 ? "" : "s")"
                if summary.dryRun {
                    line += ", \(summary.points - summary.hits) to run"
                } else {
                    line += ", \(summary.succeeded) succeeded, \(summary.failed) failed"
                    if summary.interrupted > 0 { line += ", \(summary.interrupted) interrupted" }
                    if summary.notRun > 0 { line += ", \(summary.notRun) not run (stopped before they started; `repro sweep` again runs them)" }
                    line += String(format: " in %.1fs", summary.seconds)
                }
                Console.out(line)
                if summary.dryRun, let plan = summary.plan {
                    Console.out(PlanText.sweep(plan).split(separator: "\n").dropFirst().joined(separator: "\n"))
                } else if !summary.dryRun {
                    var byBackend: [String: Int] = [:]
                    for r in summary.runs where r.cache == .miss { byBackend[r.backend, default: 0] += 1 }
                    if byBackend.count > 1 {
                        Console.out("  ran on: " + byBackend.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
                    }
                }
                for r in summary.runs where r.status == .failed {
                    Console.out("  failed: run \(r.runId ?? "-") key \(r.key.prefix(12)): \(r.message ?? "")")
                }
            }
            if summary.wasInterrupted { throw ExitCode(130) }
            if summary.failed > 0 { throw ExitCode(1) }
        }
    }
}

/// A progress bar on a terminal; plain lines every 10 s otherwise.
final class ProgressDisplay {
    let tty = isatty(2) == 1
    var lastPlain = 0.0

    func show(_ p: SweepProgress, final: Bool) {
        let finished = p.done + p.failed + p.interrupted
        guard p.total > p.hits else {
            if final { FileHandle.standardError.write(Data("sweep: all \(p.total) point(s) cached\n".utf8)) }
            return
        }
        let computed = p.total - p.hits
        let eta = p.eta.map { " ETA " + DurationText.format($0.rounded()) } ?? ""
        // Points that never started are not "done": the count says how many were left.
        let left = computed - finished
        let stopped = (p.interrupted > 0 ? ", \(p.interrupted) interrupted" : "") + (final && left > 0 ? ", \(left) not run" : "")
        let counts = "\(finished)/\(computed) done, \(p.running) running, \(p.queued) queued, \(p.failed) failed\(stopped), \(p.hits) hits\(eta)"
        if tty {
            let width = 24
            let filled = Int(Double(width) * Double(finished) / Double(computed))
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: max(0, width - filled))
            FileHandle.standardError.write(Data("\r\u{1B}[2K[\(bar)] \(counts)\(final ? "\n" : "")".utf8))
        } else {
            let now = Clock.monotonic()
            if final || now - lastPlain >= 10 {
                lastPlain = now
                FileHandle.standardError.write(Data("sweep: \(counts)\n".utf8))
            }
        }
    }
}
