import ArgumentParser
import Foundation
import ReproKit
import ReproSupport

@main
struct Repro: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repro",
        abstract: "Run simulations with provenance: every result tied to its code, config, seed and precision, and cached.",
        version: HostInfo.reproVersion,
        subcommands: [
            Run.self, Sweep.self, Verify.self, Status.self, Wait.self, Why.self, Log.self, Logs.self, Show.self, Report.self, Audit.self, LineageCommand.self, Diff.self, Export.self, Attest.self,
            Keygen.self, Fsck.self, Cache.self, Hooks.self, BackendsCommand.self, ExecTask.self, RemoteCommand.self, ConfigCommand.self, Push.self, Pull.self, Plan.self, CostCommand.self,
        ]
    )

    /// Like ParsableCommand's main, but usage errors exit 2 (as config errors do), not 64.
    static func main() {
        Memory.returnLargeBuffers()
        if FastPath.version(CommandLine.arguments) { return }
        // Read once: Foundation builds a new dictionary from environ on every call.
        let env = ProcessInfo.processInfo.environment
        StderrLogHandler.bootstrap(environment: env)
        if env["REPRO_TRACE"] == "1" {
            Trace.setSink { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
            Trace.mark("main entered")
        }
        if FastPath.handled(CommandLine.arguments, environment: env) { return }
        do {
            var command = try parseAsRoot()
            Trace.mark("arguments parsed")
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}
