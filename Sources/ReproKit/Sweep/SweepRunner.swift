import Foundation
import Logging

/// What `repro sweep` was asked to do.
public struct SweepRequest: Sendable {
    public var sweepPath: String
    public var environment: [String: String]
    public var backend: String?
    public var jobs: Int?
    public var dryRun = false
    public var failFast = false
    /// Dispatch even when the estimated cost exceeds a budget.
    public var overBudget = false
    public var allowDirty = false
    /// What to do on Ctrl-C with submitted jobs (see `CancelConfirmation`).
    public var confirmCancel: CancelConfirmation = { _, _ in true }

    public init(sweepPath: String, environment: [String: String]) {
        self.sweepPath = sweepPath
        self.environment = environment
    }
}

/// How one point of a sweep ended.
public struct SweepPointResult: Sendable {
    public var runId: String?
    public var key: String
    public var cache: RunOutcome.Cache
    public var status: RunStatus
    public var backend: String
    public var jobId: String?
    public var message: String?

    public var json: JSONValue {
        [
            "run_id": runId.json, "key": .string(key), "cache": .string(cache.rawValue), "status": .string(status.rawValue),
            "backend": .string(backend), "job_id": jobId.json, "message": message.json,
        ]
    }
}

/// What `repro sweep` did.
public struct SweepSummary: Sendable {
    public var points = 0
    public var unique = 0
    public var hits = 0
    public var succeeded = 0
    public var failed = 0
    public var interrupted = 0
    /// Points neither served nor started (the sweep was stopped first): no run, no record.
    public var notRun = 0
    public var dryRun = false
    public var wasInterrupted = false
    public var seconds = 0.0
    /// Every point, in sweep order.
    public var runs = SweepRuns()
    /// The split between backends with estimates and costs (computed for --dry-run and for
    /// `backend: auto` with a cloud backend or a budget).
    public var plan: SweepPlan?

    public var json: JSONValue {
        [
            "points": .int(Int64(points)), "unique_keys": .int(Int64(unique)), "hits": .int(Int64(hits)),
            "succeeded": .int(Int64(succeeded)), "failed": .int(Int64(failed)), "interrupted": .int(Int64(interrupted)),
            "not_run": .int(Int64(notRun)), "dry_run": .bool(dryRun), "seconds": .double(seconds), "runs": .array(runs.map(\.json)), "plan": plan?.json ?? .null,
        ]
    }
}

/// Live counts for the progress display.
public struct SweepProgress: Sendable {
    public var total = 0
    public var hits = 0
    public var done = 0
    public var failed = 0
    /// Points stopped while running (Ctrl-C, --fail-fast): not failures of the simulation.
    public var interrupted = 0
    /// Points queued that never started before the stop: not runs at all.
    public var notStarted = 0
    /// Executing now (on the local pool: at most --jobs).
    public var running = 0
    /// Waiting: not submitted yet, or submitted and not started.
    public var queued = 0
    public var started = Clock.monotonic()

    /// Seconds left at the current pace of computed points.
    public var eta: Double? {
        let computed = done + failed + interrupted
        let left = total - hits - computed
        guard computed > 0, left > 0 else { return nil }
        return (Clock.monotonic() - started) / Double(computed) * Double(left)
    }
}

/// Runs a sweep: every point is an ordinary run with its own key; cached points are hits, the
/// rest go to the backend (as job arrays on SLURM). Resumable: a re-run computes only what is
/// missing. Ctrl-C cancels what was submitted and records what finished.
public final class SweepRunner {
    let request: SweepRequest
    let log: (String) -> Void
    let logger: Logger
    let progress: (SweepProgress, Bool) -> Void

    /// `progress` is called as points finish (and with `true` once at the end).
    public init(
        _ request: SweepRequest, logger: Logger = Logger(label: "repro.sweep"), progress: @escaping (SweepProgress, Bool) -> Void
    ) {
        self.request = request
        self.logger = logger
        self.log = { logger.notice("\($0)") }
        self.progress = progress
    }

    /// A sweep's points with their keys, and where they run from.
    struct Points {
        var sweep: SweepSpec
        var repo: GitRepository
        var store: Store
        var config: StoreConfig
        let preparer: Preparer
        var table: SweepTable
        /// Per distinct key, its runtime estimate (seconds and tier), when a plan will need them:
        /// taken while the point is in hand, not regenerated for it later.
        var estimates: [RuntimeEstimate]?
        let history: EstimateHistory
        /// What the store answered for the first `servableUnits` distinct keys, looked up
        /// while the sweep was keyed.
        var servable: [KeyDigest: Store.ServableHit] = [:]
        var servableUnits = 0

        /// The estimate of distinct key `u`.
        func estimate(_ u: Int) throws -> RuntimeEstimate {
            if let e = estimates { return e[u] }
            let p = try prepared(u)
            return try history.estimate(p.spec, configHash: p.configHash, orchestration: config.orchestration)
        }

        /// The prepared point of distinct key `u`: its first run, regenerated from the sweep
        /// (git and inputs are not read again: the preparer remembers them).
        func prepared(_ u: Int) throws -> Runner.Prepared {
            let run = Int(table.firstRun[u])
            let p = try preparer.prepare(try sweep.spec(run: run))
            guard KeyDigest(hex: p.key) == table.keys[u] else {
                throw EnvironmentError(
                    "internal error: point \(run + 1) of \(preparer.specPath) has key \(p.key.prefix(12)) now and "
                        + "\(table.key(u).prefix(12)) when the sweep was expanded; nothing was run for it. Please report it")
            }
            return p
        }
    }

    /// Expands the sweep and computes every point's key (nothing runs). With `lookup`, the
    /// first block's keys are also looked up in the store (`Points.servable`), each part while
    /// the next is expanded and keyed on other threads.
    func preparePoints(lookup: Bool = false) throws -> Points {
        // The sweep file is parsed on another thread while this one opens the repository and
        // an existing store from the sweep file's folder (the base spec's, nearly always; if
        // not, they are opened again from the base spec's). Errors keep their order: the
        // sweep's own first, and no store is created for a sweep that does not expand.
        let path = request.sweepPath
        let loading = Background { () throws(ConfigError) -> SweepSpec in try SweepSpec.load(path: path) }
        func absoluteDir(_ file: String) -> String {
            ((file.hasPrefix("/") ? file : FileManager.default.currentDirectoryPath + "/" + file) as NSString).deletingLastPathComponent
        }
        func open(_ dir: String) -> Result<(GitRepository, Store?), Error> {
            Result { () throws -> (GitRepository, Store?) in
                let repo = try GitRepository(discoveringFrom: dir)
                let root = try Store.defaultRoot(repoRoot: repo.workdir, environment: request.environment)
                return (repo, FileManager.default.fileExists(atPath: root + "/store.sqlite") ? try Store(root: root) : nil)
            }
        }
        let sweepDir = absoluteDir(request.sweepPath)
        var opened = open(sweepDir)
        let sweep = try loading.wait()
        Trace.mark("sweep: \(sweep.count) points loaded, repository opened")
        if sweep.replicates > 1, case .fixed(let seed)? = sweep.baseSpec?.seed {
            // Said, not silent: the seed the user wrote is not the seed any replicate runs with.
            log("replicates: \(sweep.replicates): each replicate runs with its own seed, derived from its point's config "
                + "(which includes seed: \(seed)) and its index; seed: \(seed) itself is not used as-is. Each run's seed is in its record")
        }
        // A block of points at a time: expanded, keyed, then only the keys kept.
        let block = ParallelMap.block
        let firstCount = min(block, sweep.pointCount)
        // The first block goes in parts, pipelined: part k+1 is expanded and part k keyed on
        // other threads while this thread reads git for part k and looks up part k-1's keys
        // in the store (SQLite stays on this thread). A bad point is still the error reported
        // first.
        let part = max(128, min(512, (firstCount + 3) / 4))
        func expand(_ r: Range<Int>) -> Background<[SimulationSpec], ConfigError> {
            Background { () throws(ConfigError) -> [SimulationSpec] in try sweep.specs(points: r) }
        }
        var next = min(part, firstCount)
        var expanding = expand(0..<next)
        let baseDir = absoluteDir(sweep.baseFile)
        if baseDir != sweepDir { opened = open(baseDir) }
        var specs = try expanding.wait()
        Trace.mark("sweep: first \(specs.count) expanded")
        let (repo, existing) = try opened.get()
        let store = try existing ?? Store(root: Store.defaultRoot(repoRoot: repo.workdir, environment: request.environment))
        RepoIgnore.ensure(repo: repo, storeRoot: store.root)
        try Recovery.markDeadRunsInterrupted(store)
        HookRefresh.settleOwed(store: store, repo: repo)
        let config = try StoreConfig.load(storeRoot: store.root, repoRoot: repo.workdir)
        try TrustedKeys.reconcile(store: store, config: config, repoRoot: repo.workdir)
        try Backends.validate(request.backend ?? specs.first?.backend ?? "local", config: config)
        let preparer = Preparer(repo: repo, store: store, config: config, allowDirty: request.allowDirty, specPath: sweep.baseFile)
        var table = SweepTable(expecting: sweep.count)
        let history = EstimateHistory(store: store)
        let o = config.orchestration
        // What makes a plan of the points to run (see run()); `auto` routes by estimate.
        let planned = request.dryRun || o.cloud != nil || o.budgetPerSweep != nil || o.budgetPerMonth != nil
        let auto = (request.backend ?? sweep.backend ?? specs.first?.backend ?? "auto") == "auto"
        var estimates: [RuntimeEstimate]? = planned && auto ? [] : nil
        func add(_ specs: [SimulationSpec], _ keys: [(key: KeyDigest, configHash: String)]) throws {
            for (i, k) in keys.enumerated() where table.append(key: k.key, name: specs[i].name, backend: specs[i].backend) {
                if estimates != nil {
                    let e = try history.estimate(specs[i], configHash: k.configHash, orchestration: o)
                    // The detail is not shown per point; 200,000 of them would be held.
                    estimates?.append(RuntimeEstimate(seconds: e.seconds, tier: e.tier, detail: ""))
                }
            }
        }
        // Hits of the first block's keys. A store error is reported only once every point has
        // been expanded and keyed (a bad point is the error a user meets first, as before).
        var servable: [KeyDigest: Store.ServableHit] = [:]
        var lookedUp = 0
        var lookupError: StoreError?
        func lookUp(to end: Int) {
            guard lookup, lookupError == nil, lookedUp < end else { return }
            do {
                let found = try store.servableHits(forDigests: Array(table.keys[lookedUp..<end]), maxAge: config.maxAge)
                if servable.isEmpty { servable = found } else { servable.merge(found) { a, _ in a } }
                lookedUp = end
            } catch { lookupError = error }
        }
        while true {
            let (current, done) = (specs, next)
            if done < firstCount {
                next = min(done + part, firstCount)
                expanding = expand(done..<next)
            }
            let contexts = try preparer.keyContexts(current)
            let keying = Background { () throws -> [(key: KeyDigest, configHash: String)] in try Preparer.keys(current, contexts) }
            lookUp(to: table.uniqueCount)
            try add(current, try keying.wait())
            if done >= firstCount { break }
            specs = try expanding.wait()
        }
        lookUp(to: table.uniqueCount)
        Trace.mark("sweep: first \(firstCount) points keyed, \(servable.count) of \(lookedUp) keys servable")
        while next < sweep.pointCount {
            let end = min(sweep.pointCount, next + block)
            let specs = try sweep.specs(points: next..<end)
            try add(specs, try preparer.keyAll(specs))
            next = end
        }
        table.seal()
        if let lookupError { throw lookupError }
        Trace.mark("sweep: \(table.runCount) points expanded and keyed")
        return Points(
            sweep: sweep, repo: repo, store: store, config: config, preparer: preparer, table: table, estimates: estimates, history: history,
            servable: servable, servableUnits: lookedUp)
    }

    /// `repro plan SWEEP`: the hits, and how the points to run would be split between backends,
    /// with estimated time and cost. Nothing runs.
    public func plan() throws -> SweepPlan {
        var r = request
        r.dryRun = true
        let s = try SweepRunner(r, logger: logger, progress: { _, _ in }).run()
        if let p = s.plan { return p }
        var p = SweepPlan()
        p.points = s.points
        p.hits = s.points
        return p
    }

    /// The keys of the sweep's points, in order (for push and pull).
    public func keys() throws -> [String] {
        let t = try preparePoints().table
        return t.keyOfRun.map { t.key(Int($0)) }
    }

    public func run() throws -> SweepSummary {
        let t0 = Clock.monotonic()
        let points = try preparePoints(lookup: true)
        let (sweep, repo, store, config, table) = (points.sweep, points.repo, points.store, points.config, points.table)

        var summary = SweepSummary()
        summary.points = table.runCount
        summary.unique = table.uniqueCount
        summary.dryRun = request.dryRun
        let results = SweepOutcomes(count: table.uniqueCount)
        let root = repo.workdir
        func resultsDir(_ r: RunRecord) -> String { ResultsDir.path(repoRoot: root, name: r.name, key: r.key) }

        // Serves the points in `units` (distinct keys with their hex) that `servable` answers:
        // outputs put where a miss of the point would have put them (its own spec's name), the
        // hits and the files written for them recorded in one transaction. Returns the rest.
        var hitCount = 0
        func serve(_ units: [(u: Int, key: KeyDigest)], from servable: [KeyDigest: Store.ServableHit]) throws -> [UInt32] {
            var rest: [UInt32] = []
            var hitIds: [String] = []
            var written: [(path: String, sha256: String, runId: String)] = []
            for (u, key) in units {
                guard let hit = servable[key] else {
                    rest.append(UInt32(u))
                    continue
                }
                results.hit(u, hit)
                hitIds.append(hit.runId)
                if !request.dryRun {
                    written += try materialize(
                        hit.outputs, of: hit.runId, into: ResultsDir.path(repoRoot: root, name: table.name(u), key: key.hex), store: store)
                }
            }
            Trace.mark("sweep: outputs of \(hitIds.count) hits in place")
            if !request.dryRun { try store.recordHits(runIds: hitIds, materialized: written) }
            hitCount += hitIds.count
            return rest
        }

        // Hits first, a block of keys at a time: a cached point is answered from the store.
        var misses: [UInt32] = []
        var lo = 0
        while lo < table.uniqueCount {
            let units = (lo..<min(table.uniqueCount, lo + ParallelMap.block)).map { (u: $0, key: table.keys[$0]) }
            let servable =
                lo + units.count <= points.servableUnits
                ? points.servable : try store.servableHits(forDigests: units.map(\.key), maxAge: config.maxAge)
            Trace.mark("sweep: \(servable.count) of \(units.count) keys servable")
            misses += try serve(units, from: servable)
            lo += units.count
        }
        // Local misses the team has computed: pulled (trusted results only), then served as hits.
        let team = try TeamCacheUse.open(config: config, store: store, repoRoot: root, environment: request.environment, log: log)
        if let team, request.dryRun, !misses.isEmpty {
            team.preview(misses.map { table.key(Int($0)) })
        } else if let team, !misses.isEmpty {
            let units = misses.map { (u: Int($0), key: table.keys[Int($0)]) }
            if try team.lookup(units.map(\.key.hex)) > 0 {
                misses = try serve(units, from: try store.servableHits(forDigests: units.map(\.key), maxAge: config.maxAge))
            }
        }
        Trace.mark("sweep: \(hitCount) hits served, \(misses.count) to run")
        var prog = SweepProgress()
        prog.total = table.uniqueCount
        prog.hits = hitCount
        prog.queued = misses.count

        let requestedBackend = request.backend ?? sweep.backend ?? misses.first.map { table.backend(Int($0)) } ?? "auto"
        let jobs = request.jobs ?? ProcessInfo.processInfo.activeProcessorCount
        let toRun = misses
        let prepared = { (i: Int) throws -> Runner.Prepared in try points.prepared(Int(toRun[i])) }
        var split: SweepBurst.Split?
        if !misses.isEmpty && (request.dryRun || (requestedBackend == "auto" && config.orchestration.cloud != nil)
            || config.orchestration.budgetPerSweep != nil || config.orchestration.budgetPerMonth != nil)
        {
            let s = try SweepBurst.split(
                misses.count, estimate: { try points.estimate(Int(toRun[$0])) }, backend: requestedBackend, config: config, jobs: jobs)
            let (parts, costs) = try SweepBurst.plan(misses.count, prepared: prepared, split: s, config: config, jobs: jobs)
            var plan = SweepPlan()
            plan.points = table.runCount
            plan.hits = table.runCount - misses.count
            plan.parts = parts
            plan.currency = config.orchestration.currency
            // Per point only when the points go different ways (a 200,000-point dry run of one
            // backend would hold every point twice); the summary's runs say the backend anyway.
            if parts.count > 1 {
                for (i, m) in misses.enumerated() {
                    plan.runs.append(
                        SweepPlan.Point(key: table.key(Int(m)), cache: "miss", backend: s.backends[i], estimate: s.estimate(i), costEstimate: costs[i]))
                }
            }
            summary.plan = plan
            split = s
            if !request.dryRun {
                try Budget.check(estimate: plan.totalCost, scope: "sweep", store: store, config: config, overBudget: request.overBudget)
                if parts.count > 1 {
                    log("burst: " + parts.map { "\($0.points) point(s) on \($0.backend)" }.joined(separator: ", ") + " (\(parts.last?.reason ?? ""))")
                }
            }
        }

        if !request.dryRun && !misses.isEmpty {
            results.reserve(misses.count)
            let outcome = try dispatchSplit(
                misses, backends: split?.backends ?? misses.map { _ in requestedBackend == "auto" ? "local" : requestedBackend },
                points: points, resultsDir: resultsDir, progress: &prog, results: results)
            // --fail-fast also stops early, but that is a failure (exit 1), not an interruption.
            summary.wasInterrupted = outcome == .detached || Interrupts.shared.received != nil
            // The sweep's records into the database file itself, not only the WAL.
            try? store.checkpoint()
            if let team {
                let computed = results.outcomes.filter { $0.cache == .miss && $0.status == .succeeded }.compactMap(\.runId)
                let records = try computed.isEmpty ? [] : store.runs(ids: computed)
                team.publish(records, store: store, repoRoot: root)
            }
        }
        progress(prog, true)
        // Hits alone write a few MB of rows per 1,000 points; keep the WAL from growing run after run.
        if !request.dryRun { store.trimWAL(over: 8 << 20) }
        Trace.mark("sweep: dispatched and ingested")

        // Where a point neither served nor run would have gone.
        var notRun = (0..<table.uniqueCount).map { table.backend($0) }
        let onlyBackend = summary.plan?.parts.count == 1 ? summary.plan?.parts.first?.backend : nil
        if let b = onlyBackend ?? request.backend {
            for u in notRun.indices { notRun[u] = b }
        }
        if let s = split, summary.plan?.parts.count ?? 0 > 1 {
            for (i, m) in misses.enumerated() { notRun[Int(m)] = s.backends[i] }
        }
        summary.runs = SweepRuns(
            keyOfRun: table.keyOfRun, keys: table.keys, slot: results.slot, outcomes: results.outcomes, notRunBackend: notRun,
            dryRun: request.dryRun)
        // Counts are per point: a duplicate of a computed point counts as a hit.
        for (run, m) in table.keyOfRun.enumerated() {
            let u = Int(m)
            let o = results.get(u)
            if o?.cache == .hit || Int(table.firstRun[u]) != run {
                if o?.status == .succeeded { summary.hits += 1 }
            } else {
                switch o?.status {
                case .succeeded: summary.succeeded += 1
                case .failed: summary.failed += 1
                case .interrupted, .running: if !request.dryRun { summary.interrupted += 1 }
                case nil: if !request.dryRun { summary.notRun += 1 }
                }
            }
        }
        summary.seconds = Clock.monotonic() - t0
        return summary
    }

    /// Writes a hit's outputs where a miss would have put them (leaving correct files alone).
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
        if order.count > 1 || (order.first.map { $0 != "local" } ?? false) {
            // Burst targets chosen by `auto`: degrade to local when one cannot be reached.
            let auto = (request.backend ?? "auto") == "auto"
            for b in order where b != "local" && auto && backends.contains("local") {
                let problems = try Backends.make(b, store: store, repoRoot: repo.workdir, jobs: request.jobs, environment: request.environment, config: config)
                    .check()
                if !problems.isEmpty {
                    let moved = groups.removeValue(forKey: b) ?? []
                    log("WARNING: \(b) cannot be reached (\(problems.joined(separator: "; "))); its \(moved.count) point(s) run on the local pool instead")
                    groups["local", default: []] += moved
                    order.removeAll { $0 == b }
                }
            }
        }
        guard order.count > 1, let localPoints = groups["local"] else {
            let b = order.first ?? "local"
            return try dispatch(groups[b] ?? misses, backendName: b, points: points, resultsDir: resultsDir, progress: &prog, results: results)
        }
        let remote = order.filter { $0 != "local" }
        var localOutcome = Dispatcher.Outcome.finished
        var localProg = prog
        // One remote backend per sweep in practice (orchestration.cloud); each is driven after the local pool.
        var remoteProg = prog
        let outcome = try dispatch(
            remote.flatMap { groups[$0] ?? [] }, backendName: remote[0], points: points, resultsDir: resultsDir,
            progress: &remoteProg, results: results,
            afterSubmit: {
                localOutcome = try self.dispatch(
                    localPoints, backendName: "local", points: points, resultsDir: resultsDir, progress: &localProg, results: results)
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
        let d = Dispatcher(store: store, backend: backend, log: log, maxRetries: config.maxRetries(backend: backendName), resultsDir: resultsDir)
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

/// `repro why SWEEP`: which points would hit, and for the first misses, why.
public struct SweepWhy: Sendable {
    public var points = 0
    public var hits = 0
    /// Explanations of the first misses, in sweep order.
    public var misses: [WhyReport] = []
    public var missCount = 0

    public var json: JSONValue {
        [
            "points": .int(Int64(points)), "hits": .int(Int64(hits)), "misses": .int(Int64(missCount)),
            "explained": .array(misses.map(\.json)),
        ]
    }
}

extension SweepRunner {
    /// Explains the sweep's cache decisions without running: the hits counted, up to `limit`
    /// misses explained as `repro why` explains a spec.
    public func explain(limit: Int = 5) throws -> SweepWhy {
        let points = try preparePoints()
        let table = points.table
        var out = SweepWhy()
        out.points = table.runCount
        let runner = Runner(RunRequest(specPath: request.sweepPath, environment: request.environment), logger: logger)
        var hitUnits = Set<Int>()
        for u in 0..<table.uniqueCount {
            if try points.store.servableRun(forKey: table.key(u), maxAge: points.config.maxAge) != nil {
                hitUnits.insert(u)
                continue
            }
            out.missCount += 1
            if out.misses.count < limit { out.misses.append(try runner.explain(try points.prepared(u), knownMiss: true)) }
        }
        out.hits = table.keyOfRun.filter { hitUnits.contains(Int($0)) }.count
        out.missCount = table.runCount - out.hits
        return out
    }
}
