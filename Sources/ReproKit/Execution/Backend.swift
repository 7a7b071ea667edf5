import Foundation

/// Where tasks run. A backend is a handful of methods, as grid executors are in mature
/// workflow engines: submit a batch, poll states, cancel, collect results. A new backend is
/// one type conforming to this protocol, in one file under Execution/.
public protocol Backend: AnyObject {
    /// The name users write (`backend: slurm`, `--backend slurm`).
    var name: String { get }
    var capabilities: BackendCapabilities { get }
    /// Where task directories live (on a cluster: a shared file system).
    var stagingRoot: String { get }
    /// Whether task.json must be written for the task to run (false when run in process).
    var needsTaskFile: Bool { get }

    /// Starts the tasks (already staged in their task directories); returns one handle each.
    func submit(_ tasks: [TaskSpec], resources: [String: JSONValue]) throws -> [TaskHandle]
    /// The state of each handle, by run id.
    func poll(_ handles: [TaskHandle]) throws -> [String: TaskStatus]
    func cancel(_ handles: [TaskHandle]) throws
    /// Blocks until something may have changed (a completion, or the poll interval).
    func waitForChange(timeout: Double)
}

/// What a backend can do, and what an hour of it costs. Code outside the backend files asks
/// these questions, never the backend's name.
public struct BackendCapabilities: Sendable {
    /// Tasks run inside this repro process (a thread pool): they die with it, nobody else can
    /// ingest them, and their files can be recycled.
    public var runsInProcess: Bool = false
    /// Tasks outlive the submitting process (a scheduler): they have job ids, can be detached
    /// from and picked up by `repro status` / `repro wait`.
    public var outlivesSubmitter: Bool = true
    public var jobArrays: Bool
    /// Tasks it runs at once (0: as many as the scheduler allows).
    public var maxParallel: Int
    /// Price of one core-hour in the user's currency (0 for the local machine).
    public var pricePerCoreHour: Double

    public init(runsInProcess: Bool = false, outlivesSubmitter: Bool = true, jobArrays: Bool, maxParallel: Int, pricePerCoreHour: Double) {
        self.runsInProcess = runsInProcess
        self.outlivesSubmitter = outlivesSubmitter
        self.jobArrays = jobArrays
        self.maxParallel = maxParallel
        self.pricePerCoreHour = pricePerCoreHour
    }
}

/// A submitted task: which run, where its files are, and the scheduler's id for it.
public struct TaskHandle: Sendable {
    public var runId: String
    public var taskDir: String
    /// e.g. `12345_7` for an array task, as SLURM prints it; nil on the local backend.
    public var jobId: String?
    public var attempt: Int = 0

    public init(runId: String, taskDir: String, jobId: String?, attempt: Int = 0) {
        self.runId = runId
        self.taskDir = taskDir
        self.jobId = jobId
        self.attempt = attempt
    }
}

/// A task's state as a backend reports it.
public struct TaskStatus: Sendable {
    public enum Phase: String, Sendable {
        case queued, running
        /// Finished; `manifest` says how (or, without one, `failure` says what the scheduler said).
        case done
        /// Lost to the machine, not to the simulation (NODE_FAIL, PREEMPTED): submit again.
        case retry
    }

    public var phase: Phase
    /// The scheduler's own word (PENDING, RUNNING, TIMEOUT, ...), for messages.
    public var schedulerState: String?
    public var node: String?
    public var manifest: TaskManifest?
    /// For a task that ended without a manifest: the final status and why.
    public var failure: (status: RunStatus, message: String, exitCode: Int32?)?

    public init(phase: Phase, schedulerState: String? = nil, node: String? = nil, manifest: TaskManifest? = nil) {
        self.phase = phase
        self.schedulerState = schedulerState
        self.node = node
        self.manifest = manifest
    }
}

/// Builds the backend a name refers to.
public enum Backends {
    public static let names = ["local", "slurm"]

    /// Whether runs recorded on the named backend outlive the process that submitted them
    /// (for recovery and `repro status`, which see only records).
    public static func outlivesSubmitter(_ name: String) -> Bool { name != LocalBackend.backendName }

    public static func make(_ name: String, store: Store, repoRoot: String, jobs: Int?, environment: [String: String]) throws
        -> Backend
    {
        switch name {
        case "local":
            return LocalBackend(store: store, jobs: jobs ?? ProcessInfo.processInfo.activeProcessorCount, environment: environment)
        case "slurm":
            return try SlurmBackend(store: store, repoRoot: repoRoot, environment: environment)
        default:
            throw ConfigError("backend '\(name)' is not available; this version supports: \(names.joined(separator: ", "))")
        }
    }
}
