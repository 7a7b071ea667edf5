import Foundation
import ReproSupport
import ReproStore

/// SLURM: tasks are staged in a shared folder and submitted with `sbatch --parsable` as job
/// arrays of a generated batch script that runs `repro exec-task`; states come from `squeue`
/// (and `scontrol` once a job ages out of it), exit codes and outputs from each task's manifest.
public final class SlurmBackend: SharedFolderBackend {
    public let name: String
    public var type: String { Self.typeName }
    public var capabilities: BackendCapabilities { Self.traits }
    public let taskRoot: String
    public let needsTaskFile = true
    let config: SlurmSettings
    let environment: [String: String]
    let reproPath: String
    private var cachedMaxArraySize: Int?
    /// Job ids this backend cancelled: a cancelled pending array task may vanish from SLURM
    /// without a trace, and then it is known to be cancelled, not lost.
    private var cancelledJobs = Set<String>()
    /// When each task was first found neither in SLURM nor finished (by run id).
    private var missingSince: [String: Double] = [:]
    /// When SLURM first said COMPLETED for a task whose manifest was not there yet (by run id).
    private var completedWithoutManifest: [String: Double] = [:]
    /// How long a task may be unknown to SLURM, with no manifest, before it counts as lost.
    let missingGrace: Double = 30

    public init(name: String = "slurm", settings: SlurmSettings, store: Store, repoRoot: String, environment: [String: String]) throws {
        self.name = name
        config = settings
        self.environment = environment
        let workdir = config.workdir.map { $0.hasPrefix("/") ? $0 : repoRoot + "/" + $0 } ?? store.root + "/slurm"
        taskRoot = workdir + "/tasks"
        for dir in [workdir, workdir + "/tasks", workdir + "/batches", workdir + "/logs"] { try FileIO.makeDirectory(dir) }
        reproPath = config.reproPath ?? HostInfo.currentExecutable
        guard ChildProcess.resolveExecutable("sbatch", path: environment["PATH"] ?? "", workingDirectory: "/") != nil else {
            throw EnvironmentError(
                "the slurm backend needs sbatch on PATH, and it is not there; run on a SLURM login node, "
                    + "or start the test cluster with scripts/slurm-test-cluster.sh start")
        }
    }

    var workdir: String { (taskRoot as NSString).deletingLastPathComponent }


    func slurm(_ argv: [String]) throws(ExecutionError) -> CommandOutput.Result {
        try CommandOutput.run(argv, environment: SlurmBackend.schedulerEnvironment(environment))
    }

    /// MaxArraySize from the cluster (array indices must stay below it).
    func maxArraySize() -> Int {
        if let n = config.maxArraySize ?? cachedMaxArraySize { return n }
        var n = 1000
        if let out = try? slurm(["scontrol", "show", "config"]).stdout,
            let line = out.split(separator: "\n").first(where: { $0.hasPrefix("MaxArraySize") }),
            let v = line.split(separator: "=").last.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) })
        {
            n = max(1, v - 1)
        }
        cachedMaxArraySize = n
        return n
    }

    /// sbatch options for a spec's resources. Each value must look like what SLURM expects for
    /// that option: nothing else can reach the scheduler (no spaces, quotes or control characters).
    static func options(resources: [String: JSONValue], timeout: Double?) throws(ConfigError) -> [String] {
        var out: [String] = []
        for (k, v) in resources.sorted(by: { $0.key < $1.key }) {
            let text = try resourceValue(k, v)
            switch k {
            case "cpus": out.append("--cpus-per-task=\(text)")
            case "memory": out.append("--mem=\(text)")
            case "time":
                out.append("--time=" + (DurationText.seconds(text).map { SlurmStates.timeLimit(seconds: $0) } ?? text))
            case "partition": out.append("--partition=\(text)")
            case "account": out.append("--account=\(text)")
            case "qos": out.append("--qos=\(text)")
            case "gpus": out.append("--gpus=\(text)")
            default: throw ConfigError("resources.\(k) has no sbatch equivalent; use cpus, memory, time, partition, account, qos or gpus")
            }
        }
        if resources["time"] == nil, let t = timeout {
            // The simulation's own timeout is enforced by exec-task; give SLURM a minute more.
            out.append("--time=\(Int((t / 60).rounded(.up)) + 1)")
        }
        return out
    }

    /// The text of one resource value, checked against the shape SLURM accepts for it.
    package static func resourceValue(_ key: String, _ value: JSONValue) throws(ConfigError) -> String {
        let text: String
        switch value {
        case .string(let s): text = s
        case .int(let i) where i > 0: text = String(i)
        default:
            throw ConfigError("resources.\(key) must be a positive whole number or a word, not \(value.canonical)")
        }
        let allowed: (Character) -> Bool
        let example: String
        switch key {
        case "cpus":
            allowed = { $0.isASCII && $0.isNumber }
            example = "4"
        case "memory":
            allowed = { $0.isASCII && ($0.isNumber || "KMGTkmgtB".contains($0)) }
            example = "8G"
        case "time":
            allowed = { $0.isASCII && ($0.isNumber || ":-dhms".contains($0)) }
            example = "2h, 90m or 1-00:00:00"
        case "gpus":
            allowed = { $0.isASCII && ($0.isLetter || $0.isNumber || ":_.-".contains($0)) }
            example = "2 or a100:2"
        default:
            allowed = { $0.isASCII && ($0.isLetter || $0.isNumber || "_.,-".contains($0)) }
            example = "debug"
        }
        guard !text.isEmpty, text.allSatisfy(allowed) else {
            let shown = text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "\\u{\(String($0.value, radix: 16))}" : String($0) }
                .joined()
            throw ConfigError(
                "resources.\(key) '\(shown)' is not a valid SLURM value (control characters, spaces, quotes and "
                    + "shell syntax are refused); write it like \(example)")
        }
        return text
    }

    /// The environment sbatch, squeue and scontrol see: enough to find and reach the cluster,
    /// none of the caller's other variables (secrets among them).
    static func schedulerEnvironment(_ caller: [String: String]) -> [String: String] {
        var env: [String: String] = [:]
        for (k, v) in caller
        where ["PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ"].contains(k) || k.hasPrefix("SLURM_") || k.hasPrefix("SBATCH_") {
            env[k] = v
        }
        return env
    }

    /// Single-quotes a word for /bin/sh.
    static func shellQuote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// The batch script: fixed text and single-quoted paths only; every option goes on sbatch's
    /// command line, where no shell reads it.
    static func batchScript(listFile: String, reproPath: String, count: Int) throws(ConfigError) -> String {
        for (what, path) in [("the task list", listFile), ("slurm.repro_path", reproPath)]
        where path.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            throw ConfigError("\(what) path contains a control character; use a path without one")
        }
        return [
            "#!/bin/sh",
            "# generated by repro: runs \(count) task(s) listed in the file below through `repro exec-task`",
            "i=${SLURM_ARRAY_TASK_ID:-0}",
            "dir=$(sed -n \"$((i + 1))p\" \(shellQuote(listFile)))",
            "exec \(shellQuote(reproPath)) exec-task \"$dir/task.json\"",
        ].joined(separator: "\n") + "\n"
    }

    public func submit(_ tasks: [TaskSpec], refs: [String], resources: [String: JSONValue]) throws -> [TaskHandle] {
        guard !tasks.isEmpty else { return [] }
        let base = try SlurmBackend.options(resources: resources, timeout: tasks.first?.timeout) + config.sbatchOptions
        for o in config.sbatchOptions where o.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            throw ConfigError("slurm.sbatch_options entry \(o.debugDescription) contains a control character; remove it")
        }
        var handles: [TaskHandle] = []
        let chunkSize = maxArraySize()
        var start = 0
        while start < tasks.count {
            let chunk = Array(tasks[start..<min(tasks.count, start + chunkSize)])
            start += chunk.count
            let batch = "b-\(HostInfo.newRunId())"
            let listFile = workdir + "/batches/\(batch).tasks"
            try FileIO.writeAtomically(Array((chunk.map(\.taskDir).joined(separator: "\n") + "\n").utf8), to: listFile, sync: false)
            let script = workdir + "/batches/\(batch).sh"
            try FileIO.writeAtomically(
                Array(try SlurmBackend.batchScript(listFile: listFile, reproPath: reproPath, count: chunk.count).utf8), to: script,
                sync: false)
            var argv = [
                "sbatch", "--parsable", "--export=NONE", "--job-name=repro-\(chunk[0].name)",
                "--output=\(workdir)/logs/\(batch)-%A_%a.log", "--chdir=\(chunk[0].workdir)",
            ]
            if chunk.count > 1 {
                argv.append("--array=0-\(chunk.count - 1)" + (config.maxParallel > 0 ? "%\(config.maxParallel)" : ""))
            }
            argv += base
            argv.append(script)
            let r = try slurm(argv)
            guard r.status == 0, let job = SlurmStates.parseSubmitted(r.stdout) else {
                let said = r.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
                let kind = BackendError.kind(ofSlurmMessage: said)
                throw BackendError(
                    "sbatch refused \(script) (exit \(r.status)): \(said); "
                        + (kind == .outage ? "slurmctld did not take it (is the cluster up? `scontrol ping`)" : "check the resources and slurm.sbatch_options"),
                    kind: kind)
            }
            for (i, t) in chunk.enumerated() {
                handles.append(TaskHandle(runId: t.runId, ref: t.taskDir, jobId: chunk.count > 1 ? "\(job)_\(i)" : job))
            }
        }
        return handles
    }

    /// A task is done when its manifest exists and SLURM no longer runs it; SLURM's word
    /// decides only what the manifest cannot know (TIMEOUT, CANCELLED, NODE_FAIL, ...).
    public func poll(_ handles: [TaskHandle]) throws -> [String: TaskStatus] {
        let jobs = Set(handles.compactMap { $0.jobId?.split(separator: "_").first.map(String.init) })
        var rows: [String: SlurmStates.Row] = [:]
        if !jobs.isEmpty {
            let r = try slurm(["squeue", "-h", "-r", "--states=all", "-j", jobs.sorted().joined(separator: ","), "-o", "%i|%T|%r|%N"])
            if r.status == 0 {
                for row in SlurmStates.parseSqueue(r.stdout) { rows[row.jobId] = row }
            }
        }
        var out: [String: TaskStatus] = [:]
        var unknown: [TaskHandle] = []
        for h in handles {
            let manifest = TaskManifest.read(h.ref + "/manifest.json")
            guard let job = h.jobId, let row = rows[job] else {
                if manifest != nil {
                    out[h.runId] = TaskStatus(phase: .done, manifest: manifest)
                } else {
                    unknown.append(h)
                }
                continue
            }
            out[h.runId] = status(state: row.state, node: row.node, exitCode: nil, manifest: manifest)
        }
        // Jobs squeue no longer lists: ask scontrol (it keeps them for MinJobAge).
        for h in unknown {
            guard let job = h.jobId, let r = try? slurm(["scontrol", "-o", "show", "job", job]), r.status == 0,
                let row = SlurmStates.parseScontrol(r.stdout).first(where: { $0.jobId == job }) ?? SlurmStates.parseScontrol(r.stdout).first
            else {
                out[h.runId] = vanished(h)
                continue
            }
            missingSince.removeValue(forKey: h.runId)
            // Read after the scheduler's answer: the job may have finished since the first read.
            let manifest = TaskManifest.read(h.ref + "/manifest.json")
            out[h.runId] = status(state: row.state, node: row.node, exitCode: row.exitCode, manifest: manifest)
        }
        for (id, st) in out where st.phase == .done && st.manifest == nil && st.schedulerState?.uppercased() == "COMPLETED" {
            // A shared file system may show the manifest on this host a little after the job
            // ended: wait for it (missingGrace) before calling the task failed.
            let first = completedWithoutManifest[id] ?? Clock.monotonic()
            completedWithoutManifest[id] = first
            if Clock.monotonic() - first < missingGrace { out[id] = TaskStatus(phase: .running, schedulerState: "COMPLETING") }
        }
        return out
    }

    /// A task SLURM has no record of and that wrote no manifest.
    func vanished(_ h: TaskHandle) -> TaskStatus {
        let job = h.jobId ?? "?"
        let array = String(job.split(separator: "_").first ?? "")
        if cancelledJobs.contains(job) || cancelledJobs.contains(array) {
            var st = TaskStatus(phase: .done, schedulerState: "CANCELLED")
            st.failure = (.interrupted, "SLURM job \(job) CANCELLED before it started", nil)
            return st
        }
        let first = missingSince[h.runId] ?? Clock.monotonic()
        missingSince[h.runId] = first
        guard Clock.monotonic() - first > missingGrace else { return TaskStatus(phase: .queued, schedulerState: "UNKNOWN") }
        var st = TaskStatus(phase: .done, schedulerState: "UNKNOWN")
        st.failure = (
            .failed,
            "SLURM no longer knows job \(job) and the task wrote no manifest in \(h.ref); was the job purged, "
                + "or is \(workdir) not shared with the nodes?", nil
        )
        return st
    }

    func status(state: String, node: String, exitCode: Int32?, manifest: TaskManifest?) -> TaskStatus {
        let (phase, final, reason) = SlurmStates.phase(state)
        var st = TaskStatus(phase: phase, schedulerState: state, node: node.isEmpty ? nil : node, manifest: manifest)
        switch phase {
        case .queued, .running:
            return st
        case .retry:
            return st
        case .done:
            if var m = manifest {
                // The scheduler stopped it (TIMEOUT, CANCELLED, OUT_OF_MEMORY, ...): its reason
                // beats the executor's "interrupted" or "killed by signal". FAILED is the
                // simulation's own failure, which the manifest describes best.
                if let final, final != .succeeded, state.uppercased() != "FAILED" {
                    m.status = final == .interrupted ? .interrupted : .failed
                    m.message = reason
                }
                st.manifest = m
            } else {
                let s = final ?? .failed
                st.failure = (
                    s == .succeeded ? .failed : s,
                    s == .succeeded ? "SLURM reports COMPLETED but the task wrote no manifest (is \(workdir) shared with the nodes?)" : (reason ?? state),
                    exitCode
                )
            }
            return st
        }
    }

    public func cancel(_ handles: [TaskHandle]) throws {
        let ids = handles.compactMap(\.jobId)
        guard !ids.isEmpty else { return }
        cancelledJobs.formUnion(ids)
        _ = try slurm(["scancel"] + ids)
    }

    public func check() -> [BackendProblem] {
        guard let r = try? slurm(["scontrol", "ping"]), r.status == 0, r.stdout.contains("UP") else {
            return [BackendProblem("slurmctld does not answer `scontrol ping`; is the cluster up?", kind: .outage)]
        }
        return []
    }

    public func waitForChange(timeout: Double) {
        let step = min(timeout, config.pollInterval)
        usleep(UInt32(max(0.05, step) * 1_000_000))
    }
}
