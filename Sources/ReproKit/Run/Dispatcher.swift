import Foundation
import ReproExecution
import ReproSupport
import ReproRemote
import ReproStore

/// Drives submitted tasks to the end on one backend: polls, resubmits what the machine lost,
/// ingests what finished (outputs into the store, the record completed, outputs materialized),
/// and on Ctrl-C cancels what is still queued or running.
public final class Dispatcher {
    let store: Store
    public let backend: Backend
    let log: (String) -> Void
    let maxRetries: Int
    /// Where a finished run's outputs go; nil: not materialized.
    let resultsDir: (RunRecord) -> String?
    /// Executable hashes by path, through the stat cache (local tasks do not hash them).
    var executableHashes: [String: String] = [:]
    /// Whether to print every state change (a single run) or stay quiet (a sweep's progress).
    var announceStates = false
    /// Keep task directories (emptied) for reuse instead of deleting them: a local sweep runs
    /// thousands of tasks through a few directories, and reusing their files spares the file
    /// system an inode allocation and deletion per file per task.
    var recycleTaskDirs = false
    /// Set by a sweep: a task cancelled before it started is not a run, and its `running`
    /// record (made when it was queued) is removed, not marked interrupted; this is told its id.
    var onNeverStarted: ((String) -> Void)?
    /// Whether to print the stderr tail of a failed run (a single run: yes; a sweep: no).
    var showFailureTail = false
    /// Each local task's environment and working directory, to probe its interpreter in.
    var probeContext: [String: (env: [String: String], workdir: String)] = [:]
    /// Probes by executable and environment, once per dispatcher (a sweep runs one interpreter).
    var probes: [String: (InterpreterInfo, BlobRef)?] = [:]
    /// Decides, on Ctrl-C, whether to cancel what was submitted (default: yes).
    var confirmCancel: (Int) -> Bool = { _ in true }
    /// The backend's price (`prices:`): each finished attempt's cost from its real duration.
    var price: Price?
    /// Runs the scheduler lost more often than `maxRetries` allows: a backend failure, not the
    /// simulation's (dispatch may fall back to another backend).
    private(set) var lostRuns = Set<String>()

    public struct Finished: Sendable {
        public var record: RunRecord
        public var outputPaths: [String: String]
        public var outputsDir: String?
    }

    /// How long polling goes on through an outage (`orchestration.outage_limit`).
    let outageLimit: Double
    /// The first backoff's ceiling in an outage (tests shorten it).
    var outageBackoff = 1.0

    init(
        store: Store, backend: Backend, log: @escaping (String) -> Void, maxRetries: Int, outageLimit: Double,
        resultsDir: @escaping (RunRecord) -> String?
    ) {
        self.store = store
        self.outageLimit = outageLimit
        self.backend = backend
        self.log = log
        self.maxRetries = maxRetries
        self.resultsDir = resultsDir
    }

    /// Stages and submits tasks whose `running` records are already in the store; records
    /// job ids. Returns the handles.
    func submit(_ tasks: [TaskSpec], resources: [String: JSONValue], records: [RunRecord] = []) throws -> [TaskHandle] {
        remember(records)
        let refs = try backend.stage(tasks)
        if backend.capabilities.runsInProcess {
            for t in tasks { probeContext[t.runId] = (TaskExecutor.environment(for: t, machine: [:]), t.workdir) }
        }
        let handles = try backend.submit(tasks, refs: refs, resources: resources)
        for n in backend.takeNotices() { log("\(backend.name): WARNING: \(n)") }
        if backend.capabilities.outlivesSubmitter {
            try store.setJobs(handles.map { (runId: $0.runId, jobId: $0.jobId, taskRef: $0.ref, attempt: $0.attempt) })
        }
        return handles
    }

    public enum Outcome { case finished, interrupted, detached }

    /// Polls until every handle is final, calling `onFinished` for each as it is ingested.
    /// `refill` is asked for more work after each round (a sweep's next window).
    /// `whileWaiting` runs once, the first time nothing has finished yet, as does preparing
    /// what ingesting needs: work taken off the path of a short run. `batch`: hold finished
    /// tasks until `count` of them are in or `wait` seconds passed since the last ingest, so
    /// they are recorded in one transaction (each index page written once a batch, not once
    /// a point); only for a pool that keeps running meanwhile.
    @discardableResult
    func drive(
        _ initial: [TaskHandle], refill: () throws -> [TaskHandle] = { [] }, onFinished: (Finished) -> Void,
        stopRequested: () -> Bool = { false }, whileWaiting: (() -> Void)? = nil, batch: (count: Int, wait: Double)? = nil
    ) throws -> Outcome {
        var lastIngest = Clock.monotonic()
        var idleWork: (() -> Void)? = { [store] in
            whileWaiting?()
            store.prepareCompletionStatements()
        }
        var pending = Dictionary(initial.map { ($0.runId, $0) }, uniquingKeysWith: { a, _ in a })
        var lastState: [String: String] = [:]
        var cancelled = false
        var detached = false
        pending.merge(try refill().map { ($0.runId, $0) }, uniquingKeysWith: { a, _ in a })
        var outage = PollOutage(limit: outageLimit, base: outageBackoff)
        while !pending.isEmpty {
            let statuses: [String: TaskStatus]
            do {
                statuses = try backend.poll(Array(pending.values))
                if let lasted = outage.ended() {
                    log("\(backend.name): answers again after \(DurationText.format(lasted.rounded())); polling as before")
                }
            } catch let e as RemoteError where e.isTransient {
                // The submitted tasks run on whatever the poll says: wait, never cancel.
                guard outage.next(e) != nil else {
                    throw e.with(
                        message: "\(backend.name) has not answered for \(DurationText.format(outage.lasted.rounded())) (\(e.message)), past "
                            + "orchestration.outage_limit \(DurationText.format(outageLimit)); nothing was cancelled")
                }
                if outage.shouldLog() {
                    log("\(backend.name): \(e.message); the submitted tasks run on, asking again in \(String(format: "%.0f", outage.pause)) s")
                }
                statuses = [:]
            }
            var finished: [(TaskHandle, TaskStatus)] = []
            var resubmitted = false
            for (id, h) in pending {
                guard let st = statuses[id] else { continue }
                if announceStates {
                    let word = st.schedulerState ?? st.phase.rawValue
                    if lastState[id] != word {
                        lastState[id] = word
                        log("\(backend.name): run \(id)\(h.jobId.map { " job \($0)" } ?? "") \(word)\(st.node.map { " on \($0)" } ?? "")")
                    }
                }
                switch st.phase {
                case .queued, .running: continue
                case .done: finished.append((h, st))
                case .retry:
                    resubmitted = true
                    if h.attempt < maxRetries && !cancelled {
                        log("\(backend.name): run \(id) lost (\(st.schedulerState ?? "?")), resubmitting (attempt \(h.attempt + 2))")
                        if let again = try resubmit(h) { pending[id] = again } else { finished.append((h, failure(st, "could not resubmit"))) }
                    } else {
                        lostRuns.insert(id)
                        finished.append((h, failure(st, "lost \(h.attempt + 1) time(s) (\(st.schedulerState ?? "?")); giving up")))
                    }
                }
            }
            if let batch, !finished.isEmpty, !resubmitted, !cancelled, finished.count < min(batch.count, pending.count),
                Interrupts.shared.received == nil, !stopRequested()
            {
                let left = lastIngest + batch.wait - Clock.monotonic()
                if left > 0 {
                    // Polled every 2 ms, not woken per completion: with short tasks those
                    // wake-ups would cost the workers more than the batching saves.
                    usleep(UInt32(min(left, 0.002) * 1_000_000))
                    continue  // what finished stays pending until it is ingested
                }
            }
            for (h, _) in finished { pending.removeValue(forKey: h.runId) }
            if let told = onNeverStarted, backend.capabilities.runsInProcess, finished.contains(where: { $0.1.neverStarted }) {
                let unstarted = finished.filter { $0.1.neverStarted }.map(\.0)
                finished.removeAll { $0.1.neverStarted }
                try store.discardUnstarted(runIds: unstarted.map(\.runId))
                for h in unstarted {
                    known.removeValue(forKey: h.runId)
                    probeContext.removeValue(forKey: h.runId)
                    backend.release(h)
                    backend.forget(h)
                    told(h.runId)
                }
            }
            if !finished.isEmpty {
                Trace.mark("dispatcher: \(finished.count) finished, ingesting")
                lastIngest = Clock.monotonic()
            }
            for f in try ingestBatch(finished) { onFinished(f) }
            if !cancelled, Interrupts.shared.received != nil || stopRequested() {
                cancelled = true
                let live = Array(pending.values)
                if !live.isEmpty {
                    if confirmCancel(live.count) {
                        log("\(backend.name): cancelling \(live.count) submitted task(s)")
                        try? backend.cancel(live)
                    } else {
                        log("\(backend.name): leaving \(live.count) task(s) running; `repro status` and `repro wait` pick them up")
                        detached = true
                        break
                    }
                }
            }
            if !cancelled {
                pending.merge(try refill().map { ($0.runId, $0) }, uniquingKeysWith: { a, _ in a })
            }
            if !pending.isEmpty && finished.isEmpty {
                if let work = idleWork {
                    idleWork = nil
                    work()
                    continue  // poll again: the task may have finished meanwhile
                }
                if outage.active { outage.sleep() } else { backend.waitForChange(timeout: 1) }
            }
        }
        if detached { return .detached }
        return cancelled ? .interrupted : .finished
    }

    private func failure(_ st: TaskStatus, _ why: String) -> TaskStatus {
        var s = st
        s.phase = .done
        s.failure = (.failed, "\(st.failure?.message ?? st.schedulerState ?? "lost"): \(why)", nil)
        return s
    }

    private func resubmit(_ h: TaskHandle) throws -> TaskHandle? {
        guard let r = store.resourcesFor(runId: h.runId), let handle = try backend.resubmit(h, resources: r) else { return nil }
        try store.setJobs([(runId: handle.runId, jobId: handle.jobId, taskRef: handle.ref, attempt: handle.attempt)])
        return handle
    }

    /// Records this process created and submitted (no need to read them back).
    var known: [String: RunRecord] = [:]

    func remember(_ records: [RunRecord]) {
        for r in records { known[r.runId] = r }
    }

    /// Moves one finished task into the store (see `ingestBatch`).
    func ingest(_ h: TaskHandle, _ st: TaskStatus) throws -> Finished? {
        try ingestBatch([(h, st)]).first
    }

    /// Moves finished tasks into the store, exactly once each: a run is completed only while
    /// its record is still `running` (another repro may have ingested it first), under a per-run
    /// lock for runs on a scheduler; all records complete in one transaction.
    func ingestBatch(_ items: [(TaskHandle, TaskStatus)]) throws -> [Finished] {
        guard !items.isEmpty else { return [] }
        var locks: [FileLock] = []
        defer { locks.forEach { $0.unlock() } }
        var work: [(TaskHandle, TaskStatus, RunRecord)] = []
        for (h, st) in items {
            // A local task lives and dies with this process: nobody else can ingest it.
            if backend.capabilities.runsInProcess, let r = known.removeValue(forKey: h.runId) {
                work.append((h, st, r))
                continue
            }
            let lock = try FileLock(path: store.locksDir + "/ingest-\(h.runId).lock")
            try lock.lock()
            locks.append(lock)
            guard let r = try store.run(id: h.runId), r.status == .running else { continue }
            work.append((h, st, r))
        }
        var completions: [(runId: String, completion: Store.Completion)] = []
        var outputsFor: [String: [(OutputFile, inlineJSON: String?, blob: BlobRef)]] = [:]
        // Fetched (for a remote machine) before the store's write lock is taken.
        var collected: [String: CollectedTask] = [:]
        for (h, st, _) in work { collected[h.runId] = try backend.collect(h, st) }
        let accepted: [Bool]
        do {
            accepted = try store.withBlobWriteLock {
                for (h, st, _) in work {
                    let (c, outputs) = try completion(h, st, collected[h.runId] ?? CollectedTask(dir: h.ref))
                    completions.append((h.runId, c))
                    outputsFor[h.runId] = outputs
                }
                return try store.finishMany(completions)
            }
        } catch {
            throw recordingFailed(error, work.map { ($0.0, collected[$0.0.runId]?.dir ?? $0.0.ref) })
        }
        var out: [Finished] = []
        for (i, w) in work.enumerated() where !accepted[i] { backend.release(w.0) }
        for (i, (h, _, base)) in work.enumerated() where accepted[i] {
            let dir = collected[h.runId]?.dir ?? h.ref
            let c = completions[i].completion
            var record = base
            record.status = c.status
            record.exitCode = c.exitCode
            record.message = c.message
            record.finishedAt = c.finishedAt
            record.durationS = c.durationS
            if let started = c.startedAt {
                record.queuedAt = record.queuedAt ?? record.startedAt
                record.startedAt = started
            }
            record.stdoutBlob = c.stdout?.sha256
            record.stderrBlob = c.stderr?.sha256
            record.outputs = (outputsFor[h.runId] ?? []).map(\.0)
            record.executablePath = c.executablePath ?? record.executablePath
            record.executableSha256 = c.executableSha256 ?? record.executableSha256
            if let i = c.interpreter { record.interpreter = i }
            if let b = c.packages { record.packagesBlob = b.sha256 }
            if let host = c.host { record.host = host }
            if let user = c.user { record.user = user }
            if let env = c.env { record.env = env }
            if let submitter = c.submitter { record.submitter = submitter }
            if let job = c.jobId { record.jobId = job }
            var paths: [String: String] = [:]
            var resultDir: String?
            if record.status == .succeeded, let target = resultsDir(record) {
                resultDir = target
                for o in record.outputs {
                    let dest = target + "/" + o.name
                    let (parent, leaf) = try SafePath.openParent(root: target, rel: o.name)
                    defer { close(parent) }
                    // Already hashed into the store: moving the file is the cheap copy, but only
                    // for a plain file with one link. A hard link the simulation made to a file
                    // outside the store (an input, say) is copied from the blob instead, so
                    // editing the result can never edit that file.
                    let src = dir + "/out/" + o.name
                    var st = stat()
                    let movable = lstat(src, &st) == 0 && st.st_mode & S_IFMT == S_IFREG && st.st_nlink == 1
                    if !movable || renameat(AT_FDCWD, src, parent, leaf) != 0 {
                        try store.materializeBlob(o.sha256, in: parent, leaf: leaf, path: dest)
                    }
                    paths[o.name] = dest
                }
                try store.recordMaterializations(
                    record.outputs.compactMap { o in paths[o.name].map { (path: $0, sha256: o.sha256, runId: record.runId) } })
            } else if record.status != .succeeded, showFailureTail, let tail = TaskFiles.tail(dir + "/stderr") {
                log(tail)
            }
            if recycleTaskDirs {
                FileIO.emptyTree(dir + "/out")
                unlink(dir + "/manifest.json")
            } else {
                backend.release(h)
            }
            backend.forget(h)
            out.append(Finished(record: record, outputPaths: paths, outputsDir: resultDir))
        }
        return out
    }
}
