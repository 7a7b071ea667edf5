import Foundation
import ReproKit
import ReproSupport

/// `repro run SPEC`, `repro sweep FILE` and `repro sweep FILE --jobs N`, the commands typed most
/// (every cache hit), skip ArgumentParser: building and reflecting over its command tree costs
/// about as much as serving the hit itself (bench/targets.sh measures `repro run sim.yaml`
/// against `repro run -- sim.yaml`, which the parser takes). Anything else (another option, a
/// --jobs that is not a plain positive number) goes through ArgumentParser as usual; the
/// requests made here are RunRequest's and SweepRequest's defaults, as every option's default is.
enum FastPath {
    /// `repro --version` answers before anything is set up (scripts call it to check the
    /// install; the command tree alone costs a millisecond of type-metadata lookups).
    static func version(_ args: [String]) -> Bool {
        guard args.count == 2, args[1] == "--version" else { return false }
        print(HostInfo.reproVersion)
        return true
    }

    /// Runs the command and returns true when `args` is one of those forms.
    static func handled(_ args: [String], environment env: [String: String]) -> Bool {
        let jobs = args.count == 5 && args[1] == "sweep" && args[3] == "--jobs" && args[4].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 })
            ? Int(args[4]).flatMap { $0 >= 1 ? $0 : nil } : nil
        guard args.count == 3 && ["run", "sweep"].contains(args[1]) || jobs != nil, !args[2].hasPrefix("-"), !args[2].isEmpty else {
            return false
        }
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
            Repro.exit(withError: error)
        }
        return true
    }
}
