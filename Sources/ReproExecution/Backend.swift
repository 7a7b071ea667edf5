import Foundation
import ReproSupport
import ReproStore

/// Where tasks run. A backend is a handful of methods, as grid executors are in mature
/// workflow engines: stage a task where it will run, submit a batch, poll states, cancel,
/// collect a finished task's files, release what it used. A new backend is one type
/// conforming to this protocol, in one file of this module (see Kinds/ for its descriptor).
public protocol Backend: AnyObject {
    /// The name users write (`backend: cloud`, `--backend slurm`).
    var name: String { get }
    /// What kind of backend it is (`local`, `slurm`, `slurm-rest`), recorded beside the name.
    var type: String { get }
    var capabilities: BackendCapabilities { get }
    /// The folder task folders are named under. With a shared file system, a real folder the
    /// nodes see; otherwise a placeholder the worker maps to its own scratch folder.
    var taskRoot: String { get }

    /// Makes tasks runnable where they will run (writes their folders, or uploads what they
    /// need); returns each task's reference, kept in its run record.
    func stage(_ tasks: [TaskSpec]) throws -> [String]
    /// Starts staged tasks; returns one handle each (same order).
    func submit(_ tasks: [TaskSpec], refs: [String], resources: [String: JSONValue]) throws -> [TaskHandle]
    /// The state of each handle, by run id.
    func poll(_ handles: [TaskHandle]) throws -> [String: TaskStatus]
    func cancel(_ handles: [TaskHandle]) throws
    /// Blocks until something may have changed (a completion, or the poll interval).
    func waitForChange(timeout: Double)
    /// Brings a finished task's stdout, stderr and outputs into a local folder (`out/` for
    /// outputs), checked against its manifest.
    func collect(_ handle: TaskHandle, _ status: TaskStatus) throws -> CollectedTask
    /// Submits a lost task again as a new attempt; nil when it cannot be rebuilt.
    func resubmit(_ handle: TaskHandle, resources: [String: JSONValue]) throws -> TaskHandle?
    /// Frees what a task used once it is ingested: its folder, its staged objects.
    func release(_ handle: TaskHandle)
    /// Forgets an ingested task's status (its folder may be reused for the next task): a
    /// backend that keeps statuses in memory drops them, so a 10,000-point sweep does not
    /// hold 10,000 of them.
    func forget(_ handle: TaskHandle)
    /// What stops it from working right now (unreachable, refused credentials, unwritable
    /// staging), one each, with whether it is an outage; empty when it is ready.
    func check() -> [BackendProblem]
    /// Cheap local checks that would make every submission fail (no token, an expired one, no
    /// storage credentials), run before anything is recorded or uploaded.
    func preflight() throws
    /// Runs a small job where this backend's tasks run and reports what that machine has (OS,
    /// C library, architecture) and whether the configured repro starts there; waits at most
    /// `wait` seconds for it to be scheduled.
    func probe(wait: Double) throws -> NodeReport
    /// Warnings for the user gathered while staging and submitting (each said once).
    func takeNotices() -> [String]
}

extension Backend {
    public func forget(_ handle: TaskHandle) {}
    public func check() -> [BackendProblem] { [] }
    public func preflight() throws {}
    public func takeNotices() -> [String] { [] }
    public func probe(wait: Double) throws -> NodeReport {
        throw EnvironmentError("`repro backends --probe` is not available for \(type) backends yet; it runs a job on slurm-rest backends")
    }
}

/// Backends whose tasks live in a folder both sides see (this machine, a cluster's shared file
/// system): staging writes the folder, collecting is reading it in place.
public protocol SharedFolderBackend: Backend {
    /// Whether task.json must be written for the task to run (false when run in process).
    var needsTaskFile: Bool { get }
}

extension SharedFolderBackend {
    public func stage(_ tasks: [TaskSpec]) throws -> [String] {
        for t in tasks { try t.stage(writeSpec: needsTaskFile) }
        return tasks.map(\.taskDir)
    }

    public func collect(_ handle: TaskHandle, _ status: TaskStatus) throws -> CollectedTask { CollectedTask(dir: handle.ref) }

    public func resubmit(_ h: TaskHandle, resources: [String: JSONValue]) throws -> TaskHandle? {
        guard let bytes = try? FileIO.readAll(h.ref + "/task.json"), let j = try? JSONParser.parse(bytes) else { return nil }
        let task = try TaskSpec(json: j, file: h.ref + "/task.json")
        // A fresh start in the same folder: no manifest, an empty out/ (the lost attempt may
        // have written part of its outputs).
        unlink(task.manifestPath)
        FileIO.removeTree(task.outdir)
        try FileIO.makeDirectory(task.outdir)
        var handle = try submit([task], refs: [h.ref], resources: resources).first
        handle?.attempt = h.attempt + 1
        return handle
    }

    public func release(_ handle: TaskHandle) { FileIO.removeTree(handle.ref) }
}

/// A finished task's files, on this machine.
public struct CollectedTask: Sendable {
    /// Holds `stdout`, `stderr` and `out/`.
    public var dir: String
    /// Why the task's outputs cannot be trusted (bytes that do not match the manifest, say):
    /// the run fails with this reason and none of its outputs is stored.
    public var problem: String? = nil

    public init(dir: String, problem: String? = nil) {
        self.dir = dir
        self.problem = problem
    }
}

/// What a backend can do, and what an hour of it costs. Code outside the backend files asks
/// these questions, never the backend's name.
/// What the dispatcher asks of a backend it holds: its type's traits.
public typealias BackendCapabilities = BackendTraits

public struct TaskHandle: Sendable {
    public var runId: String
    public var ref: String
    /// e.g. `12345_7` for an array task, as SLURM prints it; nil on the local backend.
    public var jobId: String?
    public var attempt: Int = 0

    public init(runId: String, ref: String, jobId: String?, attempt: Int = 0) {
        self.runId = runId
        self.ref = ref
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
    /// Cancelled before it began (dropped from a local queue): it never ran.
    public var neverStarted = false

    public init(phase: Phase, schedulerState: String? = nil, node: String? = nil, manifest: TaskManifest? = nil) {
        self.phase = phase
        self.schedulerState = schedulerState
        self.node = node
        self.manifest = manifest
    }
}

/// Builds the backend a name refers to: `local` and `slurm` are built in; other names come
/// from `backends:` in `.repro.yaml` / `.repro/config.yaml`.
/// The backend types, and what is asked of a backend by its name.
public enum Backends {
    /// Every backend type, once: adding one is a new file with its `BackendKind` and a line here.
    static let kinds: [any BackendKind.Type] = [
        LocalBackend.self,
        SlurmBackend.self,
        SlurmRestBackend.self,
        AWSBatchBackend.self,
        AzureBatchBackend.self,
    ]

    /// The backend used when nothing else is said, and what a failed remote backend falls back to.
    public static let local = LocalBackend.typeName
    /// Not a backend: `backend: auto` routes each run by its estimate (see `Router`).
    public static let auto = "auto"
    /// Names usable with no `backends:` entry (each its own type).
    public static let builtIn = kinds.compactMap { k in k.builtInOptions(BackendDefaults()) == nil ? nil : k.typeName }
    public static let types = kinds.map { $0.typeName }

    package static func kind(_ type: String) -> (any BackendKind.Type)? { kinds.first { $0.typeName == type } }

    /// The traits of a backend type (an unknown type: treated as a scheduler that shares this
    /// disk, the way a record of an older version's backend is read).
    public static func traits(ofType type: String) -> BackendTraits {
        kind(type)?.traits ?? SlurmBackend.traits
    }

    /// Whether a recorded run (by its backend type, or its name for older records) outlives
    /// the process that submitted it.
    public static func outlivesSubmitter(_ r: RunRecord) -> Bool { traits(ofType: r.backendType ?? r.backend).outlivesSubmitter }

    /// Whether a word can name a backend (checked against the config when it is used).
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
    }
}
