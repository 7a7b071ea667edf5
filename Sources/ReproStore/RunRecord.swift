import ReproSupport

/// The state of a run in the store.
public enum RunStatus: String, Sendable, CaseIterable {
    case running, succeeded, failed, interrupted
}

/// An input file and the SHA-256 of its content when the run started.
public struct InputFile: Sendable, Equatable {
    package var path: String
    package var sha256: String
    package var size: Int64

    package var json: JSONValue { ["path": .string(path), "sha256": .string(sha256), "size": .int(size)] }

    public init(
        path: String,
        sha256: String,
        size: Int64
    ) {
        self.path = path
        self.sha256 = sha256
        self.size = size
    }
}

/// One output a run produced, by name (its path under `$REPRO_OUTDIR`).
public struct OutputFile: Sendable, Equatable {
    package var name: String
    package var sha256: String
    package var size: Int64

    package var json: JSONValue { ["name": .string(name), "sha256": .string(sha256), "size": .int(size)] }

    public init(
        name: String,
        sha256: String,
        size: Int64
    ) {
        self.name = name
        self.sha256 = sha256
        self.size = size
    }
}

/// Everything the store keeps about one run: its identity, where and how it ran, and what it
/// produced. A run record is never deleted.
public struct RunRecord: Sendable {
    package var runId: String
    package var key: String
    package var name: String
    package var specPath: String
    package var configHash: String
    /// The canonical semantic config (see `SimulationSpec.semanticConfig`).
    package var config: JSONValue
    package var commit: String
    package var commitSummary: String
    /// Code paths with their tree/blob ids, and submodule commits.
    package var code: RecordedCode
    package var dirty: Bool
    package var dirtyFiles: [String]
    package var patchBlob: String?
    package var seed: Int64
    package var solver: JSONValue
    package var inputs: [InputFile]
    /// The environment the simulation saw, minus REPRO_* values that are per run.
    package var env: [String: String]
    /// The argv as executed, templates filled in.
    package var command: [String]
    package var backend: String
    package var resources: JSONValue
    package var timeoutS: Double?
    package var host: String
    package var os: String
    package var reproVersion: String
    package var executablePath: String?
    package var executableSha256: String?
    package var status: RunStatus
    package var exitCode: Int32?
    /// Why a run failed or was interrupted, in words.
    package var message: String?
    package var pid: Int32?
    package var startedAt: String
    package var finishedAt: String?
    package var durationS: Double?
    package var stdoutBlob: String?
    package var stderrBlob: String?
    package var outputs: [OutputFile]
    /// How many times this run was served from cache.
    package var hitCount: Int
    /// Code paths that changed between this run and HEAD at the last refresh (empty: current).
    package var staleReasons: [StaleReason] = []
    /// Set when the entry was invalidated by hand.
    package var invalidatedReason: String? = nil
    /// Set when `repro cache gc` evicted the outputs.
    package var outputsEvictedAt: String? = nil
    /// The user who ran it.
    package var user: String = ""
    /// The scheduler's id (JOBID, or JOBID_INDEX for an array task); nil on the local backend.
    package var jobId: String? = nil
    /// Where the task's files were staged while it ran: a folder, or an s3:// prefix.
    package var taskRef: String? = nil
    /// The backend's type (`local`, `slurm`, `slurm-rest`); `backend` is its configured name.
    package var backendType: String? = nil
    /// Submissions after the first (lost tasks resubmitted).
    package var resubmissions: Int = 0
    /// When the run was queued (`startedAt` is when it began executing).
    package var queuedAt: String? = nil
    /// The interpreter behind the command when it is one (Python, R, ...): its real path and
    /// version, with wrappers and shims (pyenv) resolved.
    package var interpreter: InterpreterInfo? = nil
    /// The packages installed for that interpreter (`name==version` lines), as a blob.
    package var packagesBlob: String? = nil
    /// Set when the run was pulled from a team cache: the remote, the manifest, who signed it
    /// and on what trust it was accepted. Nil for a run computed here.
    package var origin: PullOrigin? = nil
    /// The runtime estimate routing used (seconds, tier, detail), when one was made.
    package var estimate: RuntimeEstimate? = nil
    /// Where the run was sent and why (backend, reason, by).
    package var routing: Routing? = nil
    /// Every attempt: backend, outcome, reason, duration, cost (backend failures included).
    package var attempts: [Attempt] = []
    /// Set when a backend failure sent the run to the local backend instead.
    package var fallback: Fallback? = nil
    /// What its attempts cost, from their real durations and `prices:`; nil when unpriced.
    package var cost: Double? = nil
    package var costEstimate: Double? = nil
    /// For a run that ran elsewhere (a scheduler's node, a cloud worker): who submitted it and
    /// from which host; `user` and `host` are where it ran.
    package var submitter: Submitter? = nil

    /// The environment as the store keeps it.
    package var envJSON: JSONValue { .object(env.mapValues { .string($0) }) }

    package var shortKey: String { String(key.prefix(12)) }

    /// The whole record as JSON (what `repro show --json` prints).
    package var json: JSONValue {
        var o: [String: JSONValue] = [
            "run_id": .string(runId), "key": .string(key), "name": .string(name), "spec": .string(specPath),
            "config_hash": .string(configHash), "config": config, "commit": .string(commit),
            "commit_summary": .string(commitSummary), "code": code.json, "dirty": .bool(dirty),
            "dirty_files": .array(dirtyFiles.map { .string($0) }), "patch_blob": patchBlob.json,
            "seed": .int(seed), "solver": solver, "inputs": .array(inputs.map(\.json)), "env": envJSON,
            "command": .array(command.map { .string($0) }), "backend": .string(backend), "resources": resources,
            "timeout_s": timeoutS.map { .double($0) } ?? .null, "host": .string(host), "os": .string(os),
            "repro_version": .string(reproVersion), "executable": executablePath.json,
            "executable_sha256": executableSha256.json, "status": .string(status.rawValue),
            "exit_code": exitCode.map { .int(Int64($0)) } ?? .null, "message": message.json,
            "started_at": .string(startedAt), "finished_at": finishedAt.json,
            "duration_s": durationS.map { .double($0) } ?? .null, "stdout_blob": stdoutBlob.json,
            "stderr_blob": stderrBlob.json, "outputs": .array(outputs.map(\.json)), "hit_count": .int(Int64(hitCount)),
        ]
        o["user"] = .string(user)
        o["job_id"] = jobId.json
        o["backend_type"] = backendType.json
        o["task_ref"] = taskRef.json
        o["resubmissions"] = .int(Int64(resubmissions))
        o["attempts"] = .array(attempts.map(\.json))
        o["estimate"] = estimate?.json ?? .null
        o["routing"] = routing?.json ?? .null
        o["fallback"] = fallback?.json ?? .null
        o["cost"] = cost.map { .double($0) } ?? .null
        o["cost_estimate"] = costEstimate.map { .double($0) } ?? .null
        o["submitter"] = submitter?.json ?? .null
        o["stale_reasons"] = .array(staleReasons.map(\.json))
        o["invalidated_reason"] = invalidatedReason.json
        o["outputs_evicted_at"] = outputsEvictedAt.json
        o["queued_at"] = queuedAt.json
        o["interpreter"] = interpreter?.json ?? .null
        o["packages_blob"] = packagesBlob.json
        o["origin"] = origin?.json ?? .null
        o["rtol"] = solver["rtol"] ?? .null
        o["atol"] = solver["atol"] ?? .null
        return .object(o)
    }

    package init(
        runId: String,
        key: String,
        name: String,
        specPath: String,
        configHash: String,
        config: JSONValue,
        commit: String,
        commitSummary: String,
        code: RecordedCode,
        dirty: Bool,
        dirtyFiles: [String],
        patchBlob: String? = nil,
        seed: Int64,
        solver: JSONValue,
        inputs: [InputFile],
        env: [String: String],
        command: [String],
        backend: String,
        resources: JSONValue,
        timeoutS: Double? = nil,
        host: String,
        os: String,
        reproVersion: String,
        executablePath: String? = nil,
        executableSha256: String? = nil,
        status: RunStatus,
        exitCode: Int32? = nil,
        message: String? = nil,
        pid: Int32? = nil,
        startedAt: String,
        finishedAt: String? = nil,
        durationS: Double? = nil,
        stdoutBlob: String? = nil,
        stderrBlob: String? = nil,
        outputs: [OutputFile],
        hitCount: Int,
        staleReasons: [StaleReason] = [],
        invalidatedReason: String? = nil,
        outputsEvictedAt: String? = nil,
        user: String = "",
        jobId: String? = nil,
        taskRef: String? = nil,
        backendType: String? = nil,
        resubmissions: Int = 0,
        queuedAt: String? = nil,
        interpreter: InterpreterInfo? = nil,
        packagesBlob: String? = nil,
        origin: PullOrigin? = nil,
        estimate: RuntimeEstimate? = nil,
        routing: Routing? = nil,
        attempts: [Attempt] = [],
        fallback: Fallback? = nil,
        cost: Double? = nil,
        costEstimate: Double? = nil,
        submitter: Submitter? = nil
    ) {
        self.runId = runId
        self.key = key
        self.name = name
        self.specPath = specPath
        self.configHash = configHash
        self.config = config
        self.commit = commit
        self.commitSummary = commitSummary
        self.code = code
        self.dirty = dirty
        self.dirtyFiles = dirtyFiles
        self.patchBlob = patchBlob
        self.seed = seed
        self.solver = solver
        self.inputs = inputs
        self.env = env
        self.command = command
        self.backend = backend
        self.resources = resources
        self.timeoutS = timeoutS
        self.host = host
        self.os = os
        self.reproVersion = reproVersion
        self.executablePath = executablePath
        self.executableSha256 = executableSha256
        self.status = status
        self.exitCode = exitCode
        self.message = message
        self.pid = pid
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.durationS = durationS
        self.stdoutBlob = stdoutBlob
        self.stderrBlob = stderrBlob
        self.outputs = outputs
        self.hitCount = hitCount
        self.staleReasons = staleReasons
        self.invalidatedReason = invalidatedReason
        self.outputsEvictedAt = outputsEvictedAt
        self.user = user
        self.jobId = jobId
        self.taskRef = taskRef
        self.backendType = backendType
        self.resubmissions = resubmissions
        self.queuedAt = queuedAt
        self.interpreter = interpreter
        self.packagesBlob = packagesBlob
        self.origin = origin
        self.estimate = estimate
        self.routing = routing
        self.attempts = attempts
        self.fallback = fallback
        self.cost = cost
        self.costEstimate = costEstimate
        self.submitter = submitter
    }
}

extension RunRecord {
    /// Every blob the record names: outputs, logs, the dirty patch, the package list.
    package var blobHashes: [String] {
        var out = outputs.map(\.sha256)
        for b in [stdoutBlob, stderrBlob, patchBlob, packagesBlob] { if let b { out.append(b) } }
        var seen = Set<String>()
        return out.filter { seen.insert($0).inserted }
    }

    /// A digest of what the run produced (output names and hashes): two producers of one key
    /// agree exactly when their digests are equal.
    package var outputsDigest: String {
        Hashing.sha256Hex(JSONValue.array(outputs.sorted { $0.name < $1.name }.map { [.string($0.name), .string($0.sha256)] }).canonical)
    }
}
