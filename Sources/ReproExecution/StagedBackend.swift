import Foundation
import ReproSupport

/// Backends whose machines share no disk with this one: tasks are staged in object storage and
/// run there by `repro exec-task URL`. Staging, collecting, releasing and resubmitting a lost
/// task are the same for all of them; each says only how it submits a job.
protocol StagedBackend: Backend {
    var staging: RemoteStaging { get }
    var pollInterval: Double { get }
    /// Submits one task's given attempt as a job of its own (a lost task's next attempt);
    /// returns the job id.
    func resubmitJob(runId: String, attempt: Int, seal: TaskSeal, name: String, resources: [String: JSONValue], timeout: Double?) throws -> String
    /// Stops one task's job (this task only, not the array it belongs to): its heartbeat went
    /// silent and it is submitted again.
    func cancelLost(_ handle: TaskHandle)
}

/// How long a task may be finished on its scheduler's word before its manifest must be in the
/// bucket (the upload may still be on its way).
final class ManifestGrace {
    let seconds: Double
    private var since: [String: Double] = [:]

    init(seconds: Double) { self.seconds = seconds }

    func found(_ runId: String) { since.removeValue(forKey: runId) }

    /// True once the grace period for this run is over (and forgets it).
    func expired(_ runId: String) -> Bool {
        let first = since[runId] ?? Clock.monotonic()
        since[runId] = first
        guard Clock.monotonic() - first > seconds else { return false }
        since.removeValue(forKey: runId)
        return true
    }
}

extension StagedBackend {
    /// A task its scheduler calls finished that left no manifest: still running while the grace
    /// lasts, then failed with what the scheduler `said` and where to look (`hint`).
    func missingManifest(_ h: TaskHandle, grace: ManifestGrace, state: String, said: String, hint: String, exitCode: Int32?) -> TaskStatus {
        guard grace.expired(h.runId) else { return TaskStatus(phase: .running, schedulerState: state) }
        var st = TaskStatus(phase: .done, schedulerState: state)
        st.failure = (
            .failed,
            "\(said) but no manifest appeared at \(staging.location.scheme)://\(staging.location.bucket)/\(staging.attemptPrefix(h.runId, h.attempt))/manifest.json "
                + "within \(DurationText.format(grace.seconds)); the worker could not run or upload (\(hint))", exitCode
        )
        return st
    }

    /// A manifest claiming success for a job its scheduler says failed is not believed: both
    /// are named and the run is failed (a manifest is only as good as the bucket it came from).
    func reconciled(_ m: TaskManifest, schedulerFailed: Bool, said: String) -> TaskManifest {
        guard schedulerFailed, m.status == .succeeded else { return m }
        var out = m
        out.status = .failed
        out.message = "\(said) but its manifest says it succeeded; the two disagree, so nothing from it is trusted"
        return out
    }

    /// A task its scheduler calls running: running, unless its heartbeat has been silent past
    /// the limit: then its job is cancelled (so the old worker cannot finish beside the next
    /// attempt) and it is lost, to be submitted again.
    func running(_ h: TaskHandle, state: String?, node: String? = nil) -> TaskStatus {
        guard let silent = staging.heartbeats.silence(h, staging: staging) else {
            return TaskStatus(phase: .running, schedulerState: state, node: node)
        }
        cancelLost(h)
        return staging.heartbeats.lost(h, silentFor: silent, node: node)
    }

    public func stage(_ tasks: [TaskSpec]) throws -> [String] {
        try staging.stage(tasks)
    }

    /// What a job of these tasks is given through its scheduler: the task's own URL, or a
    /// batch listing each one's, with its digest and a fresh key (kept here for the manifests).
    func seal(for chunk: [TaskSpec], resources: [String: JSONValue]) throws -> TaskSeal {
        let key = TaskSeal.newKey()
        let limits = chunk.map { Self.timeLimit(resources: resources, timeout: $0.timeout) }
        let docs = try staging.issueAll(zip(chunk, limits).map { ($0.runId, $1) })
        for t in chunk { try staging.saveKey(key, runId: t.runId, attempt: 0) }
        let doc = chunk.count == 1 ? docs[0] : try staging.batch(docs, timeout: limits.compactMap { $0 }.max())
        return TaskSeal(url: doc.url, sha256: doc.sha256, key: key)
    }

    /// How long a task may run on its scheduler: `resources.time` when given, else the spec's
    /// timeout; what its URLs must outlast (besides the queue).
    static func timeLimit(resources: [String: JSONValue], timeout: Double?) -> Double? {
        if let t = resources["time"], let text = try? SlurmBackend.resourceValue("time", t), let s = DurationText.seconds(text) { return s }
        return timeout
    }

    /// The warnings staging has for the user (short-lived credentials, URL lifetimes).
    public func takeNotices() -> [String] { staging.takeNotices() }

    public func waitForChange(timeout: Double) {
        usleep(UInt32(max(0.05, min(timeout, pollInterval)) * 1_000_000))
    }

    public func collect(_ handle: TaskHandle, _ status: TaskStatus) throws -> CollectedTask {
        // Nothing ran, so nothing was uploaded: no logs to ask the bucket for.
        if status.neverStarted { return try staging.emptyCollection(runId: handle.runId, attempt: handle.attempt) }
        return try staging.collect(runId: handle.runId, attempt: handle.attempt, manifest: status.manifest)
    }

    /// A lost task goes again alone, as the next attempt (its own files in the bucket).
    public func resubmit(_ h: TaskHandle, resources: [String: JSONValue]) throws -> TaskHandle? {
        let attempt = h.attempt + 1
        let plan = try staging.plan(runId: h.runId)
        let timeout = plan["timeout"]?.numberValue
        let doc = try staging.issue(runId: h.runId, attempt: attempt, timeout: Self.timeLimit(resources: resources, timeout: timeout))
        let key = TaskSeal.newKey()
        try staging.saveKey(key, runId: h.runId, attempt: attempt)
        let job = try resubmitJob(
            runId: h.runId, attempt: attempt, seal: TaskSeal(url: doc.url, sha256: doc.sha256, key: key), name: plan["name"]?.stringValue ?? "",
            resources: resources, timeout: timeout)
        return TaskHandle(runId: h.runId, ref: h.ref, jobId: job, attempt: attempt)
    }

    public func release(_ handle: TaskHandle) {
        staging.heartbeats.forget(handle)
        staging.release(runId: handle.runId, attempt: handle.attempt)
    }
}
