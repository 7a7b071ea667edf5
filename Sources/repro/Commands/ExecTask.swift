import ArgumentParser
import Foundation
import ReproKit

/// What every non-local backend runs on its machine: one task, the same way everywhere.
struct ExecTask: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec-task", abstract: "Run one staged task (used by backends).", shouldDisplay: false)

    @Argument(help: "The task spec (task.json in the task directory).")
    var spec: String

    func run() throws {
        Signals.forwardToReproKit()
        try reporting {
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
