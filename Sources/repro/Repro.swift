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
        // `repro --version` answers before ArgumentParser builds its command tree (scripts call
        // it to check the install; the tree costs a millisecond of type-metadata lookups).
        if CommandLine.arguments.count == 2, CommandLine.arguments[1] == "--version" {
            print(HostInfo.reproVersion)
            return
        }
        // Read once: Foundation builds a new dictionary from environ on every call (~0.1 ms).
        let env = ProcessInfo.processInfo.environment
        StderrLogHandler.bootstrap(environment: env)
        if env["REPRO_TRACE"] == "1" {
            Trace.setSink { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
            Trace.mark("main entered")
        }
        // `repro run SPEC`, `repro sweep FILE` and `repro sweep FILE --jobs N`, the commands typed
        // most (every cache hit), skip ArgumentParser: its reflection over the command tree costs
        // more than serving a hit (2 ms and 3 MB). Anything else (another option, a --jobs that
        // is not a plain positive number) goes through ArgumentParser as usual.
        let args = CommandLine.arguments
        let jobs = args.count == 5 && args[1] == "sweep" && args[3] == "--jobs" && args[4].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 })
            ? Int(args[4]).flatMap { $0 >= 1 ? $0 : nil } : nil
        if (args.count == 3 && ["run", "sweep"].contains(args[1]) || jobs != nil), !args[2].hasPrefix("-"), !args[2].isEmpty {
            Trace.mark("arguments parsed (plain \(args[1]))")
            do {
                if args[1] == "run" {
                    try Run.perform(RunRequest(specPath: args[2], environment: env))
                } else {
                    var request = SweepRequest(sweepPath: args[2], environment: env)
                    request.jobs = jobs
                    try Sweep.perform(request)
                }
            } catch {
                exit(withError: error)
            }
            return
        }
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
