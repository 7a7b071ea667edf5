import ArgumentParser
import Foundation
import ReproExecution
import ReproKit
import ReproSupport

/// What every non-local backend runs on its machine: one task, the same way everywhere.
struct ExecTask: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec-task", abstract: "Run one staged task (used by backends).", shouldDisplay: false)

    @Argument(help: "task.json in a shared task directory; without it, the staged task named by REPRO_TASK_URL, REPRO_TASK_SHA256 and REPRO_TASK_KEY in the environment.")
    var spec: String?

    @Option(help: "Which task of a batch URL to run (default: the scheduler's array index).")
    var index: Int?

    func run() throws {
        Signals.forwardToReproKit()
        try reporting {
            let env = ProcessInfo.processInfo.environment
            guard let spec else {
                let outcome = try RemoteWorker.run(seal: try TaskSeal.from(environment: env), index: index, machine: env, logger: Console.logger)
                // Without a manifest in the bucket the task did not finish, whatever ran.
                guard outcome.manifestUploaded else { throw ExitCode(75) }
                if let code = outcome.manifest.exitCode, code != 0 { throw ExitCode(code) }
                if outcome.manifest.status != .succeeded { throw ExitCode(1) }
                return
            }
            if spec.hasPrefix("https://") || spec.hasPrefix("http://") {
                throw ConfigError(
                    "a staged task's URL is not taken on the command line (every user of the node sees it there); the backend passes it in \(TaskSeal.urlVariable) with its digest and key")
            }
            guard let bytes = FileManager.default.contents(atPath: spec) else {
                throw ConfigError("cannot read the task spec \(spec); is the staging folder shared with this machine?")
            }
            let json: JSONValue
            do { json = try JSONParser.parse(Array(bytes)) } catch { throw ConfigError(at: spec, "\(error)") }
            let task = try TaskSpec(json: json, file: spec)
            let manifest = TaskExecutor.execute(
                task, machine: ProcessInfo.processInfo.environment, writeManifest: true, probeInterpreter: true)
            // The exit code is the simulation's, so the scheduler's own state agrees with the manifest.
            if let code = manifest.exitCode, code != 0 { throw ExitCode(code) }
            if manifest.status != .succeeded { throw ExitCode(1) }
        }
    }
}
