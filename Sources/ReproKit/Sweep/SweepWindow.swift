import Foundation
import ReproExecution
import ReproSupport
import ReproStore

/// The part of a sweep that is in flight: which points were handed to the backend, whose keys
/// this process holds, which task folders can be reused, and which points another repro is
/// computing. `SweepRunner.dispatch` asks it for the next batch and tells it what finished.
final class SweepWindow {
    /// The points to run: distinct-key indexes of the sweep, prepared (their specs regenerated)
    /// only as their batch is submitted.
    let queue: [UInt32]
    let prepared: (UInt32) throws -> Runner.Prepared
    let store: Store
    let backend: Backend
    let dispatcher: Dispatcher
    let failFast: Bool
    let sweepPath: String
    let environment: [String: String]
    let log: (String) -> Void
    /// Points handed out at once: locally a window (so Ctrl-C leaves no pile of never-started
    /// runs, and each refill is one transaction); on a scheduler everything, as arrays. With
    /// --fail-fast nothing waits in the pool beyond what runs.
    let size: Int

    private(set) var next = 0
    private(set) var inFlight = 0
    private(set) var failedSeen = false
    /// Points whose key another repro holds: waited for at the end.
    private(set) var busy: [UInt32] = []
    /// Key locks are taken as points are dispatched and dropped as they finish: holding
    /// thousands of open descriptors would make every spawn copy and close them all.
    private var held = Set<String>()
    /// The point of each key handed out (what a finished record is matched back to).
    private var pointOf: [String: UInt32] = [:]
    /// Local task folders, recycled through a free list (see Dispatcher).
    private var freeDirs: [String] = []
    private var dirOf: [String: String] = [:]
    private var dirCount = 0
    private var patchBlobs: [String: String] = [:]

    init(
        queue: [UInt32], prepared: @escaping (UInt32) throws -> Runner.Prepared, store: Store, backend: Backend, dispatcher: Dispatcher, jobs: Int, failFast: Bool, sweepPath: String,
        environment: [String: String], log: @escaping (String) -> Void
    ) {
        self.queue = queue
        self.prepared = prepared
        self.store = store
        self.backend = backend
        self.dispatcher = dispatcher
        self.failFast = failFast
        self.sweepPath = sweepPath
        self.environment = environment
        self.log = log
        size = backend.capabilities.runsInProcess ? (failFast ? jobs : max(64, 16 * jobs)) : Int.max
    }

    /// Points not handed out yet (and those waiting for another repro).
    var waiting: Int { queue.count - next + busy.count }

    /// Records and submits the next batch (nothing while half the window is still running);
    /// returns the handles, adopted runs an earlier sweep left on the scheduler among them.
    func submitMore() throws -> [TaskHandle] {
        guard next < queue.count, !(failFast && failedSeen), Interrupts.shared.received == nil else { return [] }
        let room = size == Int.max ? queue.count - next : max(0, size - inFlight)
        guard room > 0, size == Int.max || inFlight <= size / 2 else { return [] }
        let batch = queue[next..<min(queue.count, next + room)]
        next += batch.count
        var tasks: [TaskSpec] = []
        var records: [RunRecord] = []
        var resources: [String: [String: JSONValue]] = [:]
        var adopted: [TaskHandle] = []
        for u in batch {
            let p = try prepared(u)
            guard try store.keyLocks.tryLock(p.key) else {
                busy.append(u)  // another repro is computing it: wait for it at the end
                continue
            }
            held.insert(p.key)
            pointOf[p.key] = u
            if let handle = try adoptable(p) {
                adopted.append(handle)
                continue
            }
            let runId = HostInfo.newRunId()
            let (t, r) = try Runner.makeTask(
                p, specPath: sweepPath, environment: environment, backend: backend, runId: runId, patchBlob: try patchBlob(p),
                taskDir: taskDir(for: runId))
            tasks.append(t)
            records.append(r)
            resources[t.runId] = p.spec.resources
        }
        try store.insertRunningMany(records)
        // One submission (one array on SLURM) per distinct resource request.
        var handles: [TaskHandle] = []
        let groups = Dictionary(grouping: tasks, by: { JSONValue.object(resources[$0.runId] ?? [:]).canonical })
        for (_, group) in groups.sorted(by: { $0.key < $1.key }) {
            let ids = Set(group.map(\.runId))
            handles += try dispatcher.submit(
                group, resources: resources[group[0].runId] ?? [:], records: records.filter { ids.contains($0.runId) })
        }
        if !adopted.isEmpty { log("\(backend.name): \(adopted.count) point(s) already submitted by an earlier sweep; waiting for them") }
        handles += adopted
        inFlight += handles.count
        return handles
    }

    /// A run of this key an earlier sweep submitted and the scheduler still has: wait for it
    /// rather than computing the key twice.
    private func adoptable(_ p: Runner.Prepared) throws -> TaskHandle? {
        guard backend.capabilities.outlivesSubmitter, let live = try store.submittedRun(forKey: p.key), live.backend == backend.name,
            let ref = live.taskRef
        else { return nil }
        return TaskHandle(runId: live.runId, ref: ref, jobId: live.jobId, attempt: live.resubmissions)
    }

    /// The --allow-dirty patch, stored once per distinct patch.
    private func patchBlob(_ p: Runner.Prepared) throws -> String? {
        guard let bytes = p.patch else { return nil }
        let h = Hashing.sha256Hex(bytes)
        if let known = patchBlobs[h] { return known }
        let blob = try store.putReferencedBytes(bytes).sha256
        patchBlobs[h] = blob
        return blob
    }

    /// A recycled task folder for a run in this process (nil: the backend names its own).
    private func taskDir(for runId: String) -> String? {
        guard backend.capabilities.runsInProcess else { return nil }
        let dir: String
        if let d = freeDirs.popLast() {
            dir = d
        } else {
            dirCount += 1
            dir = backend.taskRoot + "/sweep-\(getpid())-slot\(dirCount)"
        }
        dirOf[runId] = dir
        return dir
    }

    /// A run was ingested: its key lock and task folder are free again. Returns its point.
    func finished(_ r: RunRecord) -> UInt32? {
        inFlight -= 1
        if r.status == .failed { failedSeen = true }
        if held.remove(r.key) != nil { store.keyLocks.unlock(r.key) }
        if let d = dirOf.removeValue(forKey: r.runId) { freeDirs.append(d) }
        return pointOf.removeValue(forKey: r.key)
    }

    /// Drops the key locks still held and the recycled folders.
    func finish() {
        for k in held { store.keyLocks.unlock(k) }
        held.removeAll()
        for i in 0..<dirCount { FileIO.removeTree(backend.taskRoot + "/sweep-\(getpid())-slot\(i + 1)") }
        dirCount = 0
    }
}
