import ArgumentParser
import Foundation
import ReproKit

/// What every non-local backend runs on its machine: one task, the same way everywhere.
struct ExecTask: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec-task", abstract: "Run one staged task (used by backends).", shouldDisplay: false)

    @Argument(help: "The task spec: task.json in a shared task directory, or the URL of a staged task (or batch).")
    var spec: String

    @Option(help: "Which task of a batch URL to run (default: the scheduler's array index).")
    var index: Int?

    func run() throws {
        Signals.forwardToReproKit()
        try reporting {
            if spec.hasPrefix("https://") || spec.hasPrefix("http://") {
                let outcome = try RemoteWorker.run(
                    url: spec, index: index, machine: ProcessInfo.processInfo.environment, logger: Console.logger)
                // Without a manifest in the bucket the task did not finish, whatever ran.
                guard outcome.manifestUploaded else { throw ExitCode(75) }
                if let code = outcome.manifest.exitCode, code != 0 { throw ExitCode(code) }
                if outcome.manifest.status != .succeeded { throw ExitCode(1) }
                return
            }
            guard let bytes = FileManager.default.contents(atPath: spec) else {
                throw ConfigError("cannot read the task spec \(spec); is the staging folder shared with this machine?")
            }
            let json: JSONValue
            do { json = try JSONParser.parse(Array(bytes)) } catch { throw ConfigError("\(spec): \(error)") }
            let task = try TaskSpec(json: json, file: spec)
            let manifest = TaskExecutor.execute(
                task, machine: ProcessInfo.processInfo.environment, writeManifest: true, probeInterpreter: true)
            // The exit code is the simulation's, so the scheduler's own state agrees with the manifest.
            if let code = manifest.exitCode, code != 0 { throw ExitCode(code) }
            if manifest.status != .succeeded { throw ExitCode(1) }
        }
    }
}
