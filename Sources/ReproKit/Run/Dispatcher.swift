import Foundation

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
    private var executableHashes: [String: String] = [:]
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
    private var probeContext: [String: (env: [String: String], workdir: String)] = [:]
    /// Probes by executable and environment, once per dispatcher (a sweep runs one interpreter).
    private var probes: [String: (InterpreterInfo, BlobRef)?] = [:]
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

    init(store: Store, backend: Backend, log: @escaping (String) -> Void, maxRetries: Int, resultsDir: @escaping (RunRecord) -> String?) {
        self.store = store
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
        while !pending.isEmpty {
            let statuses = try backend.poll(Array(pending.values))
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
                backend.waitForChange(timeout: 1)
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
    private var known: [String: RunRecord] = [:]

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
            if let i = c.interpreter { record.interpreter = i.json }
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

    /// Recording finished tasks failed (a full disk, most often): their outputs are removed
    /// from the task folders (a slot kept them otherwise, on the very disk that is full), the
    /// runs are marked failed where the store still takes a write, and the error says what to
    /// free when the disk is full.
    private func recordingFailed(_ error: any Error, _ tasks: [(TaskHandle, String)]) -> any Error {
        for (h, dir) in tasks {
            if recycleTaskDirs {
                FileIO.emptyTree(dir + "/out")
                unlink(dir + "/manifest.json")
            } else {
                backend.release(h)
            }
            try? store.markFailed(runId: h.runId, message: "its result could not be recorded: \(error)")
        }
        // SQLite's own message already carries the advice (see SQLiteDatabase.fullAdvice).
        guard let e = error as? StoreError, e.isDiskFull, e.sqliteCode == nil else { return error }
        return StoreError(
            "recording \(tasks.count == 1 ? "run " + tasks[0].0.runId : "\(tasks.count) runs") failed: \(e.message). Its outputs were removed from the task folder. "
                + DiskSpace.advice(storeRoot: store.root), posixCode: e.posixCode)
    }

    /// Hashes a finished task's outputs and streams into the store and builds its completion.
    private func completion(_ h: TaskHandle, _ st: TaskStatus, _ collected: CollectedTask) throws
        -> (Store.Completion, [(OutputFile, inlineJSON: String?, blob: BlobRef)])
    {
        let manifest = st.manifest
        var status = manifest?.status ?? st.failure?.status ?? .failed
        var message = manifest?.message ?? st.failure?.message
        let outdir = collected.dir + "/out"
        var outputs: [(OutputFile, inlineJSON: String?, blob: BlobRef)] = []
        if let problem = collected.problem {
            // Bytes that do not match their manifest are never stored.
            status = .failed
            message = problem
        }
        // A manifest names its outputs; a name that leaves the output folder (`../stdout`) or
        // that the spec did not declare is refused, and nothing of that manifest is kept.
        let declared = known[h.runId]?.config["outputs"]?.arrayValue?.compactMap(\.stringValue)
        let nameProblems = RecordIntegrity.outputProblems(
            (manifest?.outputs ?? []).map { OutputFile(name: $0.name, sha256: $0.sha256, size: $0.size) }, declared: declared)
        if collected.problem == nil, !nameProblems.isEmpty {
            status = .failed
            message = "the task's manifest is refused: " + nameProblems.prefix(3).joined(separator: "; ")
        }
        for o in collected.problem == nil && nameProblems.isEmpty ? manifest?.outputs ?? [] : [] {
            let path = outdir + "/" + o.name
            guard access(path, F_OK) == 0 else {
                status = .failed
                message = "output \(o.name) is in the manifest but not in \(outdir)"
                continue
            }
            let blob = try store.putFile(atPath: path)
            if blob.sha256 != o.sha256 {
                status = .failed
                message = "output \(o.name) changed after the simulation hashed it (\(o.sha256.prefix(12)) → \(blob.sha256.prefix(12)))"
            }
            outputs.append((OutputFile(name: o.name, sha256: blob.sha256, size: blob.size), TaskFiles.inlineJSON(o.name, path), blob))
        }
        let stdout = access(collected.dir + "/stdout", F_OK) == 0 ? try store.putFile(atPath: collected.dir + "/stdout") : nil
        let stderr = access(collected.dir + "/stderr", F_OK) == 0 ? try store.putFile(atPath: collected.dir + "/stderr") : nil
        var exeHash = manifest?.executableSha256
        if exeHash == nil, let exe = manifest?.executablePath {
            exeHash = executableHashes[exe] ?? (try? store.hashFile(atPath: exe).sha256)
            executableHashes[exe] = exeHash
        }
        var c = Store.Completion(
            status: status, exitCode: manifest?.exitCode ?? st.failure?.exitCode, message: message,
            finishedAt: manifest?.finishedAt ?? Clock.iso8601(Clock.now()), durationS: manifest?.durationS ?? 0,
            stdout: stdout, stderr: stderr, executablePath: manifest?.executablePath, executableSha256: exeHash, outputs: outputs)
        c.startedAt = manifest.flatMap { $0.startedAt.isEmpty ? nil : $0.startedAt }
        if let (info, blob) = try interpreter(manifest, runId: h.runId) {
            c.interpreter = info
            c.packages = blob
        }
        let record = known[h.runId]
        if !backend.capabilities.runsInProcess {
            c.host = manifest?.host ?? st.node
            c.os = manifest?.os
            c.jobId = manifest?.jobId ?? h.jobId
            if let record, let manifest { Dispatcher.ranElsewhere(&c, manifest: manifest, submitted: record) }
        }
        let staged = backend.capabilities.sharesFileSystem
            ? 0 : (record?.inputs.reduce(Int64(0)) { $0 + $1.size } ?? 0) + outputs.reduce(Int64(0)) { $0 + $1.0.size }
        c.cost = price?.cost(seconds: c.durationS, cores: Router.cores(record?.resources.objectValue ?? [:]), stagedBytes: staged)
        var attempt: [String: JSONValue] = [
            "backend": .string(backend.name), "type": .string(backend.type), "outcome": .string(status.rawValue),
            "duration_s": .double(c.durationS), "cost": c.cost.map { .double($0) } ?? .null, "finished_at": .string(c.finishedAt),
        ]
        if h.attempt > 0 { attempt["resubmissions"] = .int(Int64(h.attempt)) }
        if status != .succeeded, let message { attempt["reason"] = .string(String(message.prefix(300))) }
        if lostRuns.contains(h.runId) { attempt["outcome"] = "backend failure" }
        c.attempt = .object(attempt)
        return (c, outputs)
    }
}

extension Dispatcher {
    /// A run that ran on another machine is recorded as it ran there: the user, PATH and HOME
    /// of its manifest; the record made at submission becomes the submitter.
    static func ranElsewhere(_ c: inout Store.Completion, manifest: TaskManifest, submitted record: RunRecord) {
        guard let user = manifest.user, !user.isEmpty else { return }
        c.user = user
        var env = record.env.objectValue ?? [:]
        env["PATH"] = manifest.pathVariable.map { .string($0) }
        env["HOME"] = manifest.home.map { .string($0) }
        c.env = .object(env)
        c.submitter = ["user": .string(record.user), "host": .string(record.host)]
    }

    /// The interpreter behind a finished task and its package-list blob: from the manifest
    /// (probed on the node), else probed here for a local run (cached in the store).
    func interpreter(_ manifest: TaskManifest?, runId: String) throws -> (InterpreterInfo, BlobRef)? {
        let context = probeContext.removeValue(forKey: runId)
        guard let manifest else { return nil }
        if let info = manifest.interpreter {
            return (info, try store.putBytes(Array(info.packagesText.utf8)))
        }
        guard backend.capabilities.runsInProcess, let exe = manifest.program ?? manifest.executablePath, let (env, workdir) = context
        else { return nil }
        let memo = exe + "\u{0}" + workdir + "\u{0}" + env.sorted { $0.key < $1.key }.filter { !$0.key.hasPrefix("REPRO_") }
            .map { $0.key + "=" + $0.value }.joined(separator: "\u{0}")
        if let known = probes[memo] { return known }
        var result: (InterpreterInfo, BlobRef)? = nil
        if let info = InterpreterProbe.probe(executable: exe, environment: env, workdir: workdir, store: store) {
            result = (info, try store.putBytes(Array(info.packagesText.utf8)))
        }
        probes[memo] = result
        return result
    }
}

extension Store {
    /// The resources recorded for a run (for resubmission).
    func resourcesFor(runId: String) -> [String: JSONValue]? {
        (try? run(id: runId))?.resources.objectValue
    }
}
