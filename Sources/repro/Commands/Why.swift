import ArgumentParser
import Foundation
import ReproKit

struct Why: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "why",
        abstract: "Explain whether a spec would hit the cache, and if not, what changed since its last run.",
        discussion: "Exits 0 when the spec would hit, 1 when it would miss (like `git diff --exit-code`).")

    @Argument(help: "The simulation spec, or a sweep file (each point is explained).")
    var config: String

    @OptionGroup var setOptions: SetOptions
    var overrides: [String] { setOptions.values }

    @OptionGroup var dirty: DirtyOption
    var allowDirty: Bool { dirty.allowDirty }

    @OptionGroup var output: OutputOptions

    func run() throws {
        try reporting {
            if try SweepSpec.isSweepFile(config) {
                guard overrides.isEmpty else { throw ValidationError("--set applies to a spec; for a sweep, change the sweep file") }
                var sweep = SweepRequest(sweepPath: config, environment: ProcessInfo.processInfo.environment)
                sweep.allowDirty = allowDirty
                let report = try SweepRunner(sweep, logger: Console.logger, progress: { _, _ in }).explain()
                if output.json {
                    Console.json(report.json)
                } else {
                    var lines = ["\(report.points) point(s): \(report.hits) would hit, \(report.missCount) would miss"]
                    for m in report.misses {
                        let params = m.name
                        lines.append("  key \(m.key.prefix(12)) (\(params)): \(m.line)")
                    }
                    if report.missCount > report.misses.count {
                        lines.append("  ... and \(report.missCount - report.misses.count) more; `repro plan \(config)` lists where they would run")
                    }
                    Console.out(lines.joined(separator: "\n"))
                }
                if report.missCount > 0 { throw ExitCode(1) }
                return
            }
            var request = RunRequest(specPath: config, environment: ProcessInfo.processInfo.environment)
            request.overrides = overrides
            request.allowDirty = allowDirty
            let report = try Runner(request).explain()
            if output.json {
                Console.json(report.json)
            } else {
                var lines = [report.line]
                if report.differences.count > 1 {
                    for d in report.differences { lines.append("  \(d.kind.padding(toLength: 7, withPad: " ", startingAt: 0)) \(d.text)") }
                }
                Console.out(lines.joined(separator: "\n"))
            }
            if report.verdict == .miss { throw ExitCode(1) }
        }
    }
}
