import ArgumentParser
import Foundation
import ReproKit

struct Wait: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "wait", abstract: "Wait for a submitted run to finish, then ingest and show it.")

    @Argument(help: "A run id (or prefix).")
    var runId: String

    @OptionGroup var output: OutputOptions

    func run() throws {
        Signals.forwardToReproKit()
        try reporting {
            let (repo, store) = try openRepoAndStore()
            let rows = try BackendRuns.refresh([try store.run(matching: runId)], store: store, repo: repo, wait: true, logger: Console.logger,
                confirmCancel: Signals.confirmCancel)
            guard let row = rows.first, let record = try store.run(id: row.runId) else { throw ExitCode(1) }
            let outcome = RunOutcome(record: record, cache: .miss, outputsDir: row.outputsDir, outputPaths: [:])
            if output.json { Console.json(outcome.json) } else { Console.out(RunSummary.text(outcome)) }
            switch record.status {
            case .succeeded: return
            case .failed: throw ExitCode(1)
            case .interrupted, .running: throw ExitCode(130)
            }
        }
    }
}
