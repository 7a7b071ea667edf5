import ArgumentParser
import Foundation
import Logging
import ReproExecution
import ReproKit
import ReproSupport
import ReproGit
import ReproStore

/// Flags every reporting command shares.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print one JSON object on stdout instead of text.")
    var json = false
}

/// Where a command's results and diagnostics go: results on stdout, everything else on stderr.
/// Text lines lose their terminal control characters on the way out: much of what is printed
/// came from elsewhere (commit messages, a teammate's pulled record, a simulation's stderr).
enum Console {
    static func out(_ s: String) {
        FileHandle.standardOutput.write(Data((Terminal.clean(s) + "\n").utf8))
    }

    static func err(_ s: String) {
        FileHandle.standardError.write(Data((Terminal.clean(s) + "\n").utf8))
    }

    static func json(_ v: JSONValue) { out(v.pretty) }

    /// What ReproKit's notices go through (bootstrapped in `Repro.main` to print on stderr).
    static let logger = Logger(label: "repro")

    /// Prints a repro error and turns it into the exit code it carries.
    static func fail(_ error: any Error) -> ExitCode {
        if let e = error as? ReproError {
            err("error: \(e.description)")
            return ExitCode(e.exitCode)
        }
        err("error: \(error)")
        return ExitCode(1)
    }
}

/// Runs a command body, mapping repro errors to messages and exit codes.
func reporting(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as ExitCode {
        throw e
    } catch {
        throw Console.fail(error)
    }
}

/// The store of the repository containing the current directory (or `REPRO_STORE`).
func openStore() throws -> Store {
    try Workspace.open(from: FileManager.default.currentDirectoryPath, environment: ProcessInfo.processInfo.environment, needsRepository: false)
        .store
}

/// A `--backend` value must name a backend, checked before anything is served or run.
func validateBackend(_ name: String?, option: String = "--backend") throws {
    guard let name, !Backends.isValidName(name) else { return }
    throw ValidationError(
        "'\(name)' in \(option) is not a backend name; use \(Backends.builtIn.joined(separator: ", ")) or a name under `backends:` in .repro.yaml")
}

/// The repository containing the current directory and its store (same rules as `openStore`).
func openRepoAndStore() throws -> (GitRepository, Store) {
    let w = try Workspace.open(
        from: FileManager.default.currentDirectoryPath, environment: ProcessInfo.processInfo.environment, needsRepository: true)
    return (try w.repository(), w.store)
}

/// Short human forms used across commands.
enum Format {
    static func seconds(_ s: Double?) -> String {
        guard let s else { return "-" }
        if s < 1 { return cFormat("%.0fms", s * 1000) }
        if s < 120 { return cFormat("%.2fs", s) }
        return DurationText.format(s)
    }

    static func bytes(_ n: Int64) -> String { ByteText.format(n) }

    static func number(_ v: JSONValue?) -> String {
        guard let v else { return "-" }
        if case .double(let d) = v { return cFormat("%g", d) }
        return v.canonical
    }

    /// A path relative to the current directory when it is below it.
    static func path(_ p: String) -> String {
        let cwd = FileManager.default.currentDirectoryPath + "/"
        return p.hasPrefix(cwd) ? String(p.dropFirst(cwd.count)) : p
    }
}

/// `--set key=value`, the same for every command that takes a spec (run, plan, why, verify,
/// push, pull).
/// `--allow-dirty`, for every command that reads the code identity.
struct DirtyOption: ParsableArguments {
    @Flag(help: "Accept uncommitted changes under the code paths; they are stored as a patch and join the key.")
    var allowDirty = false
}

/// Where and whether work is dispatched: run, sweep and plan.
struct DispatchOptions: ParsableArguments {
    @Option(help: "Where to run: local, slurm, or a backend named in .repro.yaml (default: the sweep's, else the spec's backend).")
    var backend: String?

    @OptionGroup var dirty: DirtyOption
    var allowDirty: Bool { dirty.allowDirty }

    @Flag(help: "Dispatch even when the estimated cost exceeds orchestration.budget.")
    var overBudget = false

    func validate() throws { try validateBackend(backend) }
}

struct SetOptions: ParsableArguments {
    @Option(name: .customLong("set"), help: ArgumentHelp("Override a spec value, e.g. --set solver.rtol=1e-8 (repeatable; spec files only).", valueName: "key=value"))
    var values: [String] = []
}
