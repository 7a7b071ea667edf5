import ArgumentParser
import Foundation
import ReproKit

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status",
        abstract: "Show runs that are still queued or running on a backend, ingesting those that finished.")

    @Argument(help: "A run id (or prefix); default: every unfinished run.")
    var runId: String?

    @OptionGroup var output: OutputOptions

    func run() throws {
        try reporting {
            let (repo, store) = try openRepoAndStore()
            let runs = try runId.map { [try store.run(matching: $0)] } ?? store.unfinishedRuns()
            let rows = try BackendRuns.refresh(runs, store: store, repo: repo, wait: false, logger: Console.logger)
            if output.json {
                Console.json(.array(rows.map(\.json)))
                return
            }
            guard !rows.isEmpty else {
                Console.err("no unfinished runs")
                return
            }
            Console.out(Table.render([["RUN", "NAME", "BACKEND", "JOB", "STATE", "NODE"]] + rows.map {
                [$0.runId, $0.name, $0.backend, $0.jobId ?? "-", $0.state, $0.node ?? "-"]
            }))
        }
    }
}
