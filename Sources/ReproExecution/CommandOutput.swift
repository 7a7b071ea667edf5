import Foundation
import ReproSupport

/// Runs a helper program (sbatch, squeue, ...) to completion and captures its output. Not for
/// simulations: those go through ChildProcess.
public enum CommandOutput {
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// How long a helper may take before it is killed: a hung `squeue` (slurmctld down, a
    /// stuck NFS mount) must not hang repro.
    public static let defaultTimeout: Double = 60
    /// Helpers' output is read up to this size; more is an error, not an out-of-memory.
    static let outputLimit = 64 << 20

    public static func run(
        _ argv: [String], environment: [String: String], workingDirectory: String = "/", timeout: Double = defaultTimeout
    ) throws(ExecutionError) -> Result {
        let path = environment["PATH"] ?? SimulationEnvironment.defaultPath
        guard let first = argv.first, let exe = ChildProcess.resolveExecutable(first, path: path, workingDirectory: "/") else {
            throw ExecutionError.missing("cannot find '\(argv.first ?? "")' on PATH=\(path); is it installed here?")
        }
        // A private directory (mode 0700, a fresh name) for the captured streams.
        var template = Array((NSTemporaryDirectory() + "repro-cmd-XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ buf in buf.baseAddress.flatMap { mkdtemp($0) } }) else {
            throw ExecutionError("cannot create a temporary directory in \(NSTemporaryDirectory()): \(FileIO.errnoText())")
        }
        let dir = String(cString: made)
        defer { FileIO.removeTree(dir) }
        var child = ChildProcess(
            executable: exe, arguments: Array(argv.dropFirst()), environment: environment, workingDirectory: workingDirectory,
            stdoutPath: dir + "/out", stderrPath: dir + "/err", timeout: timeout)
        child.killGrace = 2
        child.stopsOnInterrupt = false
        let (end, _) = try child.run()
        func text(_ name: String) throws(ExecutionError) -> String {
            do {
                return String(decoding: try FileIO.readAll(dir + "/" + name, limit: outputLimit), as: UTF8.self)
            } catch {
                throw ExecutionError("\(first) wrote more than \(outputLimit >> 20) MiB to std\(name); not reading it")
            }
        }
        switch end {
        case .timedOut(let t):
            throw ExecutionError(
                "\(first) did not answer within \(DurationText.format(t)) and was killed; is the service it talks to up?")
        case .interrupted(let s):
            throw ExecutionError("\(first) was interrupted by signal \(s)")
        case .exited, .signaled:
            return Result(status: end.exitCode ?? 1, stdout: try text("out"), stderr: try text("err"))
        }
    }
}
