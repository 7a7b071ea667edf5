import Foundation
import Logging
import ReproExecution
import ReproSupport
import ReproGit
import ReproStore

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
                let root = Store.defaultRoot(repoRoot: repo.workdir, environment: request.environment)
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
        try Backends.validate(request.backend ?? specs.first?.backend ?? Backends.local, config: config)
        let preparer = Preparer(repo: repo, store: store, config: config, allowDirty: request.allowDirty, specPath: sweep.baseFile)
        var table = SweepTable(expecting: sweep.count)
        let history = EstimateHistory(store: store)
        let o = config.orchestration
        // What makes a plan of the points to run (see run()); `auto` routes by estimate.
        let planned = request.dryRun || o.cloud != nil || o.budgetPerSweep != nil || o.budgetPerMonth != nil
        let auto = (request.backend ?? sweep.backend ?? specs.first?.backend ?? Backends.auto) == Backends.auto
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

        let requestedBackend = request.backend ?? sweep.backend ?? misses.first.map { table.backend(Int($0)) } ?? Backends.auto
        let jobs = request.jobs ?? ProcessInfo.processInfo.activeProcessorCount
        let toRun = misses
        let prepared = { (i: Int) throws -> Runner.Prepared in try points.prepared(Int(toRun[i])) }
        var split: SweepBurst.Split?
        if !misses.isEmpty && (request.dryRun || (requestedBackend == Backends.auto && config.orchestration.cloud != nil)
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
                        SweepPlan.Point(key: table.key(Int(m)), cache: .miss, backend: s.backends[i], estimate: s.estimate(i), costEstimate: costs[i]))
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
                misses, backends: split?.backends ?? misses.map { _ in requestedBackend == Backends.auto ? Backends.local : requestedBackend },
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
}
