import Foundation
import Logging
import ReproExecution
import ReproRemote
import ReproSupport
import ReproStore

extension SweepRunner {
    /// Writes a hit's outputs into place; returns what was written where (to record).
    func materialize(_ run: RunRecord, into dir: String, store: Store) throws -> [(path: String, sha256: String, runId: String)] {
        try materialize(run.outputs, of: run.runId, into: dir, store: store)
    }

    func materialize(_ outputs: [OutputFile], of runId: String, into dir: String, store: Store) throws
        -> [(path: String, sha256: String, runId: String)]
    {
        var written: [(path: String, sha256: String, runId: String)] = []
        for o in outputs {
            let dest = dir + "/" + o.name
            if !Materializer.isCurrent(dest, sha256: o.sha256, size: o.size) {
                try store.materializeBlob(o.sha256, into: dir, name: o.name)
            }
            written.append((dest, o.sha256, runId))
        }
        return written
    }

    /// Runs each group of points on its backend. With a scheduler and the local pool both in
    /// use, the scheduler's points are submitted first (their job arrays run meanwhile), then
    /// the local pool works through its points, then the scheduler's are collected. A cloud
    /// backend that does not answer is checked before anything is submitted: its points run
    /// locally, and the log says so. `misses` are distinct-key indexes of `points.table`.
    func dispatchSplit(
        _ misses: [UInt32], backends: [String], points: Points, resultsDir: @escaping (RunRecord) -> String,
        progress prog: inout SweepProgress, results: SweepOutcomes
    ) throws -> Dispatcher.Outcome {
        let (store, repo, config) = (points.store, points.repo, points.config)
        // One backend for all (the usual case): the points go as they are, not copied to a group.
        if let only = backends.first, !backends.contains(where: { $0 != only }) {
            return try dispatch(misses, backendName: only, points: points, resultsDir: resultsDir, progress: &prog, results: results)
        }
        var groups: [String: [UInt32]] = [:]
        var order: [String] = []
        for (p, b) in zip(misses, backends) {
            if groups[b] == nil { order.append(b) }
            groups[b, default: []].append(p)
        }
        if order.count > 1 || (order.first.map { $0 != Backends.local } ?? false) {
            // Burst targets chosen by `auto`: degrade to local when one cannot be reached (an
            // outage); a setup error is reported, never hidden by running elsewhere.
            let auto = (request.backend ?? Backends.auto) == Backends.auto
            for b in order where b != Backends.local && auto && backends.contains(Backends.local) {
                let problems = try Backends.make(b, store: store, repoRoot: repo.workdir, jobs: request.jobs, environment: request.environment, config: config)
                    .check()
                if let wrong = problems.first(where: { $0.kind == .configuration }) {
                    throw BackendError(
                        "\(b) is not set up to take this sweep's points: \(wrong.message). Fix it (`repro backends` checks it), "
                            + "or run the sweep here with --backend local",
                        kind: .configuration)
                }
                if !problems.isEmpty {
                    let moved = groups.removeValue(forKey: b) ?? []
                    log("WARNING: \(b) cannot be reached (\(problems.map(\.message).joined(separator: "; "))); its \(moved.count) point(s) run on the local pool instead")
                    groups[Backends.local, default: []] += moved
                    order.removeAll { $0 == b }
                }
            }
        }
        guard order.count > 1, let localPoints = groups[Backends.local] else {
            let b = order.first ?? Backends.local
            return try dispatch(groups[b] ?? misses, backendName: b, points: points, resultsDir: resultsDir, progress: &prog, results: results)
        }
        let remote = order.filter { $0 != Backends.local }
        var localOutcome = Dispatcher.Outcome.finished
        var localProg = prog
        // One remote backend per sweep in practice (orchestration.cloud); each is driven after the local pool.
        var remoteProg = prog
        let outcome = try dispatch(
            remote.flatMap { groups[$0] ?? [] }, backendName: remote[0], points: points, resultsDir: resultsDir,
            progress: &remoteProg, results: results,
            afterSubmit: {
                localOutcome = try self.dispatch(
                    localPoints, backendName: Backends.local, points: points, resultsDir: resultsDir, progress: &localProg, results: results)
            })
        prog.done = localProg.done + remoteProg.done - prog.done
        prog.failed = localProg.failed + remoteProg.failed - prog.failed
        prog.interrupted = localProg.interrupted + remoteProg.interrupted - prog.interrupted
        prog.notStarted = localProg.notStarted + remoteProg.notStarted - prog.notStarted
        prog.running = 0
        prog.queued = 0
        return localOutcome != .finished ? localOutcome : outcome
    }

    /// Locks each key (skipping keys another repro is computing right now), records the runs,
    /// submits them (a window at a time locally; all at once, as arrays, to a scheduler) and
    /// drives them to the end. Each point's spec is regenerated as its batch is submitted.
    func dispatch(
        _ misses: [UInt32], backendName: String, points: Points, resultsDir: @escaping (RunRecord) -> String,
        progress prog: inout SweepProgress, results: SweepOutcomes, afterSubmit: () throws -> Void = {}
    ) throws -> Dispatcher.Outcome {
        let (store, repo, config) = (points.store, points.repo, points.config)
        let backend = try Backends.make(
            backendName, store: store, repoRoot: repo.workdir, jobs: request.jobs, environment: request.environment, config: config)
        try backend.preflight()
        let d = Dispatcher(store: store, backend: backend, log: log, maxRetries: config.maxRetries(backend: backendName), outageLimit: config.orchestration.outageLimit, resultsDir: resultsDir)
        d.price = config.price(backend: backendName)
        let inProcess = backend.capabilities.runsInProcess
        d.recycleTaskDirs = inProcess
        d.confirmCancel = { [request] n in request.confirmCancel(n, backendName) }

        let jobs = request.jobs ?? ProcessInfo.processInfo.activeProcessorCount
        let window = SweepWindow(
            queue: misses, prepared: { try points.prepared(Int($0)) }, store: store, backend: backend, dispatcher: d, jobs: jobs,
            failFast: request.failFast, sweepPath: request.sweepPath, environment: request.environment, log: log)
        defer { window.finish() }
        var lastShown = 0.0

        var firstRound = true
        let dispatchStart = Clock.monotonic()
        var localProg = prog
        let show = progress
        // Points queued but never started at Ctrl-C are not runs: no record, counted apart.
        d.onNeverStarted = { _ in localProg.notStarted += 1 }
        let outcome = try d.drive(
            [],
            refill: {
                let h = try window.submitMore()
                if firstRound && backend.capabilities.outlivesSubmitter {
                    log(String(format: "%@: submitted %d run(s) in %.2f s", backend.name, h.count, Clock.monotonic() - dispatchStart))
                    Trace.mark("\(backend.name): \(HTTPClient.sent.load(ordering: .relaxed)) HTTP requests so far")
                }
                if firstRound {
                    firstRound = false
                    try afterSubmit()
                }
                return h
            },
            onFinished: { f in
                let r = f.record
                if let u = window.finished(r) { results.finished(Int(u), r) }
                switch r.status {
                case .succeeded: localProg.done += 1
                case .failed:
                    localProg.failed += 1
                case .interrupted, .running: localProg.interrupted += 1
                }
                // The local pool runs at most `jobs` of what was handed to it; the rest waits.
                let executing = inProcess ? min(window.inFlight, jobs) : window.inFlight
                localProg.running = executing
                localProg.queued = window.waiting + (window.inFlight - executing)
                let now = Clock.monotonic()
                if now - lastShown > 0.2 {
                    lastShown = now
                    show(localProg, false)
                }
            },
            stopRequested: { self.request.failFast && window.failedSeen },
            // Locally the pool holds a window of queued points, so recording what finished in
            // batches costs the workers nothing, as long as a batch is well under the half
            // window that is refilled at a time (10,000 `true` points: 7% faster; 1,000 Python
            // points: a third of the WAL pages written).
            batch: inProcess && !request.failFast ? (count: min(window.size / 4, max(8, 2 * jobs)), wait: 0.1) : nil)
        prog = localProg
        if outcome != .finished { return outcome }

        // Keys another repro was computing: wait for it, then they are hits (or ours to run).
        for u in window.busy.map({ Int($0) }) {
            let key = points.table.key(u)
            try store.keyLocks.lock(key)
            defer { store.keyLocks.unlock(key) }
            if let hit = try store.servableRun(forKey: key, maxAge: config.maxAge) {
                results.set(u, .init(runId: hit.runId, cache: .hit, status: .succeeded, backend: hit.backend, jobId: hit.jobId))
                prog.hits += 1
                try store.recordHits(runIds: [hit.runId], materialized: try materialize(hit, into: resultsDir(hit), store: store))
                continue
            }
            let p = try points.prepared(u)
            let patch = try p.patch.map { try store.putReferencedBytes($0).sha256 }
            let (t, r) = try Runner.makeTask(
                p, specPath: request.sweepPath, environment: request.environment, backend: backend, runId: HostInfo.newRunId(),
                patchBlob: patch)
            try store.insertRunningMany([r])
            let handles = try d.submit([t], resources: p.spec.resources, records: [r])
            try d.drive(handles, onFinished: { f in
                results.finished(u, f.record)
                if f.record.status == .succeeded { prog.done += 1 } else { prog.failed += 1 }
            })
        }
        return Interrupts.shared.received != nil ? .interrupted : outcome
    }
}
