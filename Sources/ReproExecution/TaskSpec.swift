import Foundation
import ReproSupport
import ReproStore

/// A self-describing unit of work: everything needed to run one simulation anywhere, with
/// fixed file names in its task directory. Every backend runs it through `TaskExecutor`
/// (in process for the local backend, `repro exec-task DIR/task.json` elsewhere).
///
/// Task directory:
/// ```
/// task.json      this spec
/// config.json    $REPRO_CONFIG
/// out/           $REPRO_OUTDIR
/// stdout stderr  the simulation's streams
/// manifest.json  written last, atomically, by the executor: its presence means "finished"
/// ```
public struct TaskSpec: Sendable {
    public var runId: String
    public var key: String
    public var name: String
    public var taskDir: String
    /// argv with templates filled in; argv[0] is resolved on the machine that runs it.
    public var argv: [String]
    /// The environment (on a scheduler: minus PATH and HOME, which the executing machine supplies).
    public var env: [String: String]
    /// The repository root there (the simulation's cwd).
    public var workdir: String
    public var outputs: [String]?
    public var timeout: Double?
    public var configJSON: JSONValue
    /// For `repro verify --perturb`: a umask for the simulation, and the environment handed
    /// over in reverse order.
    public var umask: UInt32? = nil
    public var reverseEnvironment = false
    /// Variables in `env` that came from `env_passthrough` (maybe secrets): never written to
    /// task.json, only to `secrets.json` (mode 0600) beside it, which ingestion removes.
    public var secretNames: [String] = []
    /// For a machine that shares no disk: where the code and inputs come from, to upload.
    public var sources: TaskSources? = nil

    public var outdir: String { taskDir + "/out" }
    public var configFile: String { taskDir + "/config.json" }
    public var manifestPath: String { taskDir + "/manifest.json" }
    public var secretsPath: String { taskDir + "/secrets.json" }

    public var json: JSONValue {
        [
            "v": 1, "run_id": .string(runId), "key": .string(key), "name": .string(name), "task_dir": .string(taskDir),
            "argv": .array(argv.map { .string($0) }),
            "env": .object(env.filter { !secretNames.contains($0.key) }.mapValues { .string($0) }),
            "secret_env": .array(secretNames.map { .string($0) }),
            "workdir": .string(workdir), "outputs": outputs.map { .array($0.map { .string($0) }) } ?? .null,
            "timeout": timeout.map { .double($0) } ?? .null, "config": configJSON,
        ]
    }

    public init(
        runId: String, key: String, name: String, taskDir: String, argv: [String], env: [String: String], workdir: String,
        outputs: [String]?, timeout: Double?, configJSON: JSONValue
    ) {
        self.runId = runId
        self.key = key
        self.name = name
        self.taskDir = taskDir
        self.argv = argv
        self.env = env
        self.workdir = workdir
        self.outputs = outputs
        self.timeout = timeout
        self.configJSON = configJSON
    }

    public init(json j: JSONValue, file: String) throws(ConfigError) {
        guard let runId = j["run_id"]?.stringValue, let key = j["key"]?.stringValue, let dir = j["task_dir"]?.stringValue,
            let argv = j["argv"]?.arrayValue?.compactMap(\.stringValue), !argv.isEmpty, let workdir = j["workdir"]?.stringValue
        else { throw ConfigError("\(file) is not a repro task spec (run_id, key, task_dir, argv, workdir are required)") }
        self.runId = runId
        self.key = key
        name = j["name"]?.stringValue ?? ""
        taskDir = dir
        self.argv = argv
        env = (j["env"]?.objectValue ?? [:]).compactMapValues(\.stringValue)
        self.workdir = workdir
        outputs = j["outputs"]?.arrayValue?.compactMap(\.stringValue)
        timeout = j["timeout"]?.numberValue
        configJSON = j["config"] ?? .object([:])
        secretNames = j["secret_env"]?.arrayValue?.compactMap(\.stringValue) ?? []
        if !secretNames.isEmpty {
            guard let bytes = try? FileIO.readAll(secretsPath, limit: 1 << 20), let secrets = try? JSONParser.parse(bytes).objectValue
            else {
                throw ConfigError(
                    "\(secretsPath) is missing or unreadable; the task needs the values of \(secretNames.joined(separator: ", ")) "
                        + "(env_passthrough) from it: was it already ingested, or is the file not readable by this user?")
            }
            for name in secretNames { if let v = secrets[name]?.stringValue { env[name] = v } }
        }
    }

    /// Writes task.json and config.json and makes out/.
    public func stage(writeSpec: Bool) throws(StoreError) {
        // A fresh private directory: plain writes, no temp-and-rename needed.
        if mkdir(taskDir, 0o755) != 0 && errno != EEXIST { try FileIO.makeDirectory(taskDir) }
        if mkdir(outdir, 0o755) != 0 && errno != EEXIST { try FileIO.makeDirectory(outdir) }
        try FileIO.writeNew(Array((configJSON.canonical + "\n").utf8), to: configFile)
        if writeSpec {
            if !secretNames.isEmpty {
                let secrets = JSONValue.object(Dictionary(uniqueKeysWithValues: secretNames.compactMap { n in env[n].map { (n, .string($0)) } }))
                try FileIO.writeAtomically(Array(secrets.canonical.utf8), to: secretsPath, sync: false, mode: 0o600)
            }
            try FileIO.writeAtomically(Array((json.pretty + "\n").utf8), to: taskDir + "/task.json", sync: false)
        }
    }
}

/// What a task on a machine that shares no disk needs from this one: the repository's commit
/// (archived through libgit2), the working-tree files that differ from it (`--allow-dirty`),
/// and the inputs, all uploaded by content.
public struct TaskSources: Sendable {
    public var repoRoot: String
    public var commit: String
    public var dirtyFiles: [String]
    public var inputs: [InputFile]

    public init(repoRoot: String, commit: String, dirtyFiles: [String], inputs: [InputFile]) {
        self.repoRoot = repoRoot
        self.commit = commit
        self.dirtyFiles = dirtyFiles
        self.inputs = inputs
    }
}

/// What the executor reports for a task (manifest.json).
public struct TaskManifest: Sendable {
    public var runId: String
    public var status: RunStatus
    public var exitCode: Int32?
    public var message: String?
    public var startedAt: String
    public var finishedAt: String
    public var durationS: Double
    public var host: String
    public var os: String
    public var jobId: String?
    public var executablePath: String?
    public var executableSha256: String?
    public var outputs: [OutputFile]
    /// The interpreter behind the command, probed where the task ran (schedulers).
    public var interpreter: InterpreterInfo? = nil
    /// The program as found on PATH, before symlinks are resolved (a venv's `bin/python`).
    public var program: String? = nil
    /// Who ran it, and the PATH and HOME the process got, where it ran.
    public var user: String? = nil
    public var pathVariable: String? = nil
    public var home: String? = nil

    public var json: JSONValue {
        [
            "run_id": .string(runId), "status": .string(status.rawValue), "exit_code": exitCode.map { .int(Int64($0)) } ?? .null,
            "message": message.json, "started_at": .string(startedAt), "finished_at": .string(finishedAt),
            "duration_s": .double(durationS), "host": .string(host), "os": .string(os), "job_id": jobId.json,
            "executable": executablePath.json, "executable_sha256": executableSha256.json,
            "outputs": .array(outputs.map(\.json)),
            "interpreter": interpreter.map(\.jsonWithPackages) ?? .null,
            "program": program.json, "user": user.json, "path": pathVariable.json, "home": home.json,
        ]
    }

    public init(json j: JSONValue) throws(StoreError) {
        guard let runId = j["run_id"]?.stringValue, let status = j["status"]?.stringValue.flatMap(RunStatus.init(rawValue:))
        else { throw StoreError("a task manifest is missing run_id or status") }
        self.runId = runId
        self.status = status
        exitCode = j["exit_code"]?.intValue.map { Int32(truncatingIfNeeded: $0) }
        message = j["message"]?.stringValue
        startedAt = j["started_at"]?.stringValue ?? ""
        finishedAt = j["finished_at"]?.stringValue ?? ""
        durationS = j["duration_s"]?.numberValue ?? 0
        host = j["host"]?.stringValue ?? ""
        os = j["os"]?.stringValue ?? ""
        jobId = j["job_id"]?.stringValue
        executablePath = j["executable"]?.stringValue
        executableSha256 = j["executable_sha256"]?.stringValue
        outputs = (j["outputs"]?.arrayValue ?? []).map {
            OutputFile(name: $0["name"]?.stringValue ?? "", sha256: $0["sha256"]?.stringValue ?? "", size: $0["size"]?.intValue ?? 0)
        }
        interpreter = j["interpreter"].flatMap(InterpreterInfo.init(json:))
        program = j["program"]?.stringValue
        user = j["user"]?.stringValue
        pathVariable = j["path"]?.stringValue
        home = j["home"]?.stringValue
    }

    init(
        runId: String, status: RunStatus, exitCode: Int32?, message: String?, startedAt: String, finishedAt: String,
        durationS: Double, host: String, os: String, jobId: String?, executablePath: String?, executableSha256: String?,
        outputs: [OutputFile]
    ) {
        self.runId = runId
        self.status = status
        self.exitCode = exitCode
        self.message = message
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.durationS = durationS
        self.host = host
        self.os = os
        self.jobId = jobId
        self.executablePath = executablePath
        self.executableSha256 = executableSha256
        self.outputs = outputs
    }

    public static func read(_ path: String) -> TaskManifest? {
        guard let bytes = try? FileIO.readAll(path), let j = try? JSONParser.parse(bytes) else { return nil }
        return try? TaskManifest(json: j)
    }
}
