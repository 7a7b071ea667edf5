import ArgumentParser
import Foundation
import ReproKit

struct Why: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "why",
        abstract: "Explain whether a spec would hit the cache, and if not, what changed since its last run.",
        discussion: "Exits 0 when the spec would hit, 1 when it would miss (like `git diff --exit-code`).")

    @Argument(help: "The simulation spec.")
    var config: String

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a spec value, as for run.", valueName: "key=value"))
    var overrides: [String] = []

    @Flag(help: "Explain as if uncommitted changes under the code paths were allowed.")
    var allowDirty = false

    @OptionGroup var output: OutputOptions

    func run() throws {
        try reporting {
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
