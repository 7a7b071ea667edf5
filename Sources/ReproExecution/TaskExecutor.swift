import Foundation
import ReproSupport
import ReproStore

/// Runs one task where it is: the same environment scrubbing, supervision, output matching
/// and hashing on every backend. Touches no store (the task directory may be on a cluster's
/// shared file system far from it); the result is a manifest.
public enum TaskExecutor {
    /// The machine's own PATH and HOME complete the task's environment.
    public static func environment(for task: TaskSpec, machine: [String: String]) -> [String: String] {
        var env = task.env
        env["PATH"] = env["PATH"] ?? machine["PATH"] ?? SimulationEnvironment.defaultPath
        env["HOME"] = env["HOME"] ?? machine["HOME"] ?? "/"
        return env
    }

    /// Executes the task and returns its manifest; with `writeManifest`, also writes
    /// manifest.json atomically (last, so its presence means the task finished).
    /// `probeInterpreter`: ask the interpreter behind the command for its real path, version
    /// and packages (on a scheduler's node; the local backend asks once per run at ingestion).
    public static func execute(
        _ task: TaskSpec, machine: [String: String], writeManifest: Bool, hashExecutable: Bool = true, probeInterpreter: Bool = false
    ) -> TaskManifest {
        let started = Clock.now()
        let env = environment(for: task, machine: machine)
        let jobId = machine["SLURM_ARRAY_JOB_ID"].flatMap { a in machine["SLURM_ARRAY_TASK_ID"].map { "\(a)_\($0)" } }
            ?? machine["SLURM_JOB_ID"]
        var manifest = TaskManifest(
            runId: task.runId, status: .failed, exitCode: nil, message: nil, startedAt: Clock.iso8601(started),
            finishedAt: Clock.iso8601(started), durationS: 0, host: HostInfo.hostname, os: HostInfo.os, jobId: jobId,
            executablePath: nil, executableSha256: nil, outputs: [])
        manifest.user = HostInfo.user
        manifest.pathVariable = env["PATH"]
        manifest.home = env["HOME"]
        defer {
            if writeManifest {
                try? FileIO.writeAtomically(Array((manifest.json.pretty + "\n").utf8), to: task.manifestPath, sync: false)
            }
        }
        guard let exe = ChildProcess.resolveExecutable(task.argv[0], path: env["PATH"] ?? "", workingDirectory: task.workdir) else {
            manifest.message = ChildProcess.whyNotRunnable(task.argv[0], path: env["PATH"] ?? "", workingDirectory: task.workdir)
            manifest.exitCode = 127
            return manifest
        }
        let real = FileIO.realPath(exe)
        manifest.executablePath = real
        manifest.program = exe
        if hashExecutable { manifest.executableSha256 = try? Hashing.sha256OfFile(atPath: real).hash }
        if probeInterpreter {
            manifest.interpreter = InterpreterProbe.probe(executable: exe, environment: env, workdir: task.workdir, store: nil)
        }
        var child = ChildProcess(
            executable: exe, arguments: Array(task.argv.dropFirst()), environment: env, workingDirectory: task.workdir,
            stdoutPath: task.taskDir + "/stdout", stderrPath: task.taskDir + "/stderr", timeout: task.timeout)
        child.umask = task.umask
        child.reverseEnvironment = task.reverseEnvironment
        let end: ChildEnd
        let duration: Double
        do {
            (end, duration) = try child.run()
        } catch {
            manifest.message = error.message
            manifest.status = .failed
            return manifest
        }
        manifest.durationS = duration
        manifest.finishedAt = Clock.iso8601(Clock.now())
        manifest.exitCode = end.exitCode
        switch end {
        case .exited(0): manifest.status = .succeeded
        case .exited(let c): manifest.message = "the simulation exited with code \(c)"
        case .signaled(let s): manifest.message = "the simulation was killed by signal \(s)"
        case .timedOut(let t): manifest.message = "timed out after \(DurationText.format(t)); the process group was killed"
        case .interrupted(let s):
            manifest.status = .interrupted
            manifest.message = "interrupted by signal \(s); the simulation's process group was stopped"
        }
        let collected = OutputCollector.collect(outdir: task.outdir, patterns: task.outputs)
        if manifest.status == .succeeded, !collected.missing.isEmpty {
            manifest.status = .failed
            manifest.message = "declared output(s) not written under $REPRO_OUTDIR: \(collected.missing.joined(separator: ", "))"
        }
        for name in collected.files {
            if let (hash, size) = try? Hashing.sha256OfFile(atPath: task.outdir + "/" + name) {
                manifest.outputs.append(OutputFile(name: name, sha256: hash, size: size))
            }
        }
        return manifest
    }
}
