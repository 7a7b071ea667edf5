import ArgumentParser
import Foundation
import ReproKit

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify",
        abstract: "Rerun an identity fresh on several backends (and under perturbations) and compare every output.")

    @Argument(help: "A spec file or a run id (or prefix).")
    var target: String

    @Option(help: "Comma-separated backends to run on.")
    var backends: String = "local,slurm"

    @Option(help: "Fresh runs per backend.")
    var runs: Int = 1

    @OptionGroup var setOptions: SetOptions
    var overrides: [String] { setOptions.values }

    @Flag(help: "Also rerun locally under TZ, LANG, umask, HOME, env order, thread counts, output path and start time, naming the causes of any difference.")
    var perturb = false

    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        for b in backends.split(separator: ",") { try validateBackend(String(b), option: "--backends") }
    }

    func run() throws {
        Signals.forwardToReproKit()
        try reporting {
            var request = VerifyRequest(target: target, environment: ProcessInfo.processInfo.environment)
            request.backends = backends.split(separator: ",").map(String.init)
            request.runs = runs
            request.perturb = perturb
            request.overrides = overrides
            let report = try Verifier(request, logger: Console.logger).run()
            if output.json {
                Console.json(report.json)
            } else {
                Console.out(VerifyText.render(report))
            }
            if report.exitCode != 0 { throw ExitCode(report.exitCode) }
        }
    }
}

enum VerifyText {
    static func render(_ r: VerifyReport) -> String {
        var lines = ["\(r.name) key \(r.key.prefix(12)): \(r.verdict.rawValue)"]
        for run in r.runs {
            lines.append("  run \(run.runId)  \(run.backend)\(run.jobId.map { " job \($0)" } ?? "") on \(run.host)  \(run.status.rawValue)\(run.variation.map { "  [\($0)]" } ?? "")")
        }
        for o in r.outputs {
            var line = "  \(o.name): \(o.verdict.rawValue)"
            if o.verdict != .identical && o.format != "binary" {
                line += String(format: "  max abs %.3g, max rel %.3g, max %llu ULPs", o.maxAbs, o.maxRel, o.maxUlps)
                if let at = o.maxAbsAt { line += " (at \(at))" }
            }
            lines.append(line)
            for d in o.differences { lines.append("      \(d.location): \(d.old) → \(d.new)") }
            if o.differenceCount > o.differences.count { lines.append("      ... \(o.differenceCount - o.differences.count) more") }
        }
        if !r.causes.isEmpty { lines.append("  caused by: \(r.causes.joined(separator: ", "))") }
        if !r.threadCounts.isEmpty { lines.append("  thread counts tried: \(r.threadCounts.map(String.init).joined(separator: ", "))") }
        for n in r.notApplied { lines.append("  NOT TESTED: \(n)") }
        lines.append("  recorded as verification \(r.verificationId)")
        return lines.joined(separator: "\n")
    }
}
