import ArgumentParser
import Foundation
import ReproKit
import ReproSupport

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "report",
        abstract: "Write a self-contained HTML report of runs: summary, results and plots, timeline, verification, provenance.")

    @Argument(help: "Sweep files, spec files or run ids (default: every run of the --since window).")
    var targets: [String] = []

    @Option(help: "Only runs started within this long, e.g. 30d (default: any time).")
    var since: String?

    @Option(help: "The HTML file to write.")
    var out: String = "report.html"

    @Option(name: .customLong("y"), help: ArgumentHelp(
        "A numeric output to tabulate and plot: FILE:$.json.path or FILE.csv:column (repeatable; default: the spec's report.y).",
        valueName: "output"))
    var ys: [String] = []

    func validate() throws {
        if let since, DurationText.seconds(since) == nil {
            throw ValidationError("--since '\(since)' is not a duration; write e.g. 12h or 30d")
        }
        for y in ys where !y.contains(":") {
            throw ValidationError("--y '\(y)' must name an output and a value: FILE:$.json.path or FILE.csv:column")
        }
    }

    func run() throws {
        try reporting {
            let (repo, store) = try openRepoAndStore()
            var request = ReportRequest(environment: ProcessInfo.processInfo.environment)
            request.targets = targets
            request.since = since.flatMap(DurationText.seconds)
            request.ys = ys
            let data = try ReportBuilder.build(request, store: store, repo: repo)
            let html = ReportHTML.render(data)
            try ReportFile.write(html, to: out)
            Console.err("repro: wrote \(out) (\(data.points.count) run\(data.points.count == 1 ? "" : "s"), \(Format.bytes(Int64(html.utf8.count))))")
        }
    }
}
