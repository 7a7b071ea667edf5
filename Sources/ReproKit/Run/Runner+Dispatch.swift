import Foundation
import ReproExecution
import ReproSupport
import ReproRemote
import ReproStore

/// What `repro plan` and `repro run --dry-run` show, and what a run is dispatched by.
public struct RunPlan: Sendable {
    public var name: String
    public var key: String
    public var cache: CacheOutcome
    public var why: String?
    public var estimate: RuntimeEstimate
    public var routing: Routing
    public var costEstimate: Double?
    public var currency: String
    /// Why `repro run` would refuse it for the budget (nil: it would not).
    public var budgetRefusal: String? = nil

    public var json: JSONValue {
        [
            "name": .string(name), "key": .string(key), "cache": .string(cache.rawValue), "why": why.json, "backend": .string(routing.backend),
            "reason": .string(routing.reason), "chosen_by": .string(routing.by.rawValue), "estimate_s": .double(estimate.seconds),
            "estimate_tier": .string(estimate.tier.rawValue), "estimate_detail": .string(estimate.detail),
            "cost_estimate": costEstimate.map { .double($0) } ?? .null, "currency": .string(currency),
            "budget_refusal": budgetRefusal.json,
        ]
    }
}

/// A backend failed a run (not the simulation): what happened, for the attempt list.
struct BackendFailure: Error {
    enum Stage { case submit, running, lost }
    var stage: Stage
    var error: any Error
    /// What to list for it; nil when the dispatcher already recorded the attempt.
    var attempt: Attempt?
    var message: String { (error as? ReproError)?.description ?? "\(error)" }
}

extension Runner {
    /// Estimate, route and price a prepared run. `interactive`: a person may be asked (the
    /// 1-10 h band) when the request carries a way to ask.
    func plan(_ p: Prepared, interactive: Bool) throws -> RunPlan {
        let estimate = try EstimateHistory(store: p.store, single: true).estimate(p.spec, configHash: p.configHash, orchestration: p.config.orchestration)
        var routing = Router.route(
            requested: request.backend, specBackend: p.spec.backend, estimate: estimate, config: p.config, ask: nil)
        if interactive, let ask = request.ask, routing.by == .askDefault {
            // A question comes next: say first why the run is needed at all.
            settleExplanation()
            routing = Router.route(
                requested: request.backend, specBackend: p.spec.backend, estimate: estimate, config: p.config, ask: ask)
        }
        try Backends.validate(routing.backend, config: p.config)
        return RunPlan(
            name: p.spec.name, key: p.key, cache: .miss, why: nil, estimate: estimate, routing: routing,
            costEstimate: Runner.costEstimate(p, backend: routing.backend, seconds: estimate.seconds), currency: p.config.orchestration.currency)
    }

    static func costEstimate(_ p: Prepared, backend: String, seconds: Double) -> Double? {
        guard let price = p.config.price(backend: backend) else { return nil }
        let staged = Backends.traits(of: backend, config: p.config).sharesFileSystem ? 0 : p.inputs.reduce(Int64(0)) { $0 + $1.size }
        return price.cost(seconds: seconds, cores: Router.cores(p.spec.resources), stagedBytes: staged)
    }

    /// `repro plan` / `repro run --dry-run`: the key, whether it would hit, and where and at
    /// what cost it would run. Nothing runs, nothing is recorded.
    public func dryRun() throws(ReproErrorBox) -> RunPlan {
        try boxingErrors {
            let p = try prepare()
            var plan = try self.plan(p, interactive: false)
            if !request.noCache, let hit = try p.store.servableRun(forKey: p.key, maxAge: p.config.maxAge) {
                plan.cache = .hit
                plan.why = "served from run \(hit.runId)"
            } else {
                plan.why = request.noCache ? "--no-cache" : (try? explain(p))?.line
                // What `repro run` would check before submitting: the plan says it now.
                do {
                    try Budget.check(estimate: plan.costEstimate, scope: "run", store: p.store, config: p.config, overBudget: request.overBudget)
                } catch let e as BudgetError {
                    plan.budgetRefusal = e.message
                }
            }
            return plan
        }
    }

    /// A miss: estimate and route it, check the budget, run it; on a backend failure retry
    /// submission with backoff, then fall back to local when the estimate is short enough.
    func execute(_ p: Prepared) throws -> RunOutcome {
        let plan = try self.plan(p, interactive: true)
        Trace.mark("estimated and routed")
        // Off this machine the wait is long and submission prints: say why before it.
        let chosenIsLocal = Backends.isLocal(plan.routing.backend, config: p.config)
        if !chosenIsLocal { settleExplanation() }
        let o = p.config.orchestration
        if ![.option, .spec].contains(plan.routing.by) && (!chosenIsLocal || plan.routing.by != .auto) {
            log("\(plan.routing.backend): \(plan.routing.reason)")
        }
        if let c = plan.costEstimate, c > 0, !chosenIsLocal {
            log("estimated cost on \(plan.routing.backend): \(Money.format(c, o.currency)) (\(DurationText.format(plan.estimate.seconds.rounded())), \(plan.estimate.tier.rawValue))")
        }
        try Budget.check(estimate: plan.costEstimate, scope: "run", store: p.store, config: p.config, overBudget: request.overBudget)

        var backendName = plan.routing.backend
        var routing = plan.routing
        var submitFailures = 0
        var runId: String? = nil
        while true {
            do {
                var outcome = try execute(p, on: backendName, plan: plan, routing: routing, reuse: &runId)
                // The stored record has every attempt and the fallback.
                if let id = runId, outcome.record.status != .running, let fresh = try p.store.run(id: id) {
                    outcome.record = fresh
                }
                return outcome
            } catch let f as BackendFailure {
                let reason = f.message
                let rule = FallbackRule(allowed: request.fallback, estimate: plan.estimate, localBelow: o.localBelow, retries: o.retries)
                let action = rule.decide(
                    stage: f.stage, kind: FailureKind.of(f.error), onLocal: Backends.isLocal(backendName, config: p.config),
                    submitFailures: submitFailures)
                if action == .retry {
                    submitFailures += 1
                    let delay = RetryPolicy(attempts: o.retries + 1, baseDelay: o.retryDelay, maxDelay: max(o.retryDelay, 300))
                        .delay(afterAttempt: submitFailures - 1)
                    log("\(backendName): \(reason); trying again in \(String(format: "%.1f", delay)) s (retry \(submitFailures) of \(o.retries))")
                    usleep(UInt32(min(delay, 3600) * 1_000_000))
                    continue
                }
                if runId == nil, let a = f.attempt { carriedAttempts.append(a) }
                if case .fail(let why) = action {
                    throw Runner.failed(f, backend: backendName, runId: runId, why: why, store: p.store)
                }
                log("\(backendName): \(reason); falling back to local (the estimate \(DurationText.format(plan.estimate.seconds.rounded())) is under \(DurationText.format(o.localBelow)))")
                routing = Routing(backend: Backends.local, reason: "fallback from \(backendName): \(reason)", by: .fallback)
                let fallback = Fallback(
                    from: backendName, to: Backends.local, reason: reason, stage: "\(f.stage)", at: Clock.iso8601(Clock.now()))
                backendName = Backends.local
                pendingFallback = fallback
            }
        }
    }

    /// One attempt on one backend. The run is recorded once (`reuse` keeps its id across
    /// attempts); a backend failure comes out as `BackendFailure` with the attempt recorded.
    func execute(_ p: Prepared, on backendName: String, plan: RunPlan, routing: Routing, reuse runId: inout String?) throws -> RunOutcome {
        let t0 = Clock.now()
        func failure(_ stage: BackendFailure.Stage, _ e: any Error) -> BackendFailure {
            let attempt = Attempt(
                backend: backendName, type: Backends.type(of: backendName, config: p.config), outcome: Attempt.backendFailure,
                stage: "\(stage)", reason: String(((e as? ReproError)?.description ?? "\(e)").prefix(300)), durationS: Clock.now() - t0,
                finishedAt: Clock.iso8601(Clock.now()))
            if let id = runId { try? p.store.addAttempt(runId: id, attempt, cost: nil) }
            return BackendFailure(stage: stage, error: e, attempt: attempt)
        }
        let backend: Backend
        do {
            backend = try Backends.make(
                backendName, store: p.store, repoRoot: p.repo.workdir, jobs: 1, environment: request.environment, config: p.config)
            try backend.preflight()
        } catch let e as RemoteError {
            throw failure(.submit, e)
        }
        Trace.mark("backend ready")
        let id = runId ?? HostInfo.newRunId()
        let patchBlob = try p.patch.map { try p.store.putReferencedBytes($0) }
        // A local run reuses a task folder (held until this attempt returns).
        let slot = backend.capabilities.runsInProcess ? try TaskSlot.take(store: p.store) : nil
        defer { withExtendedLifetime(slot) {} }  // its lock must outlive the task, not its last use
        var (task, record) = try Runner.makeTask(
            p, specPath: request.specPath, environment: request.environment, backend: backend, runId: id, patchBlob: patchBlob?.sha256,
            taskDir: slot?.dir)
        record.estimate = plan.estimate
        record.routing = routing
        record.costEstimate = Runner.costEstimate(p, backend: backendName, seconds: plan.estimate.seconds)
        Trace.mark("task prepared")
        if runId == nil {
            // Attempts that failed before any record existed (a backend down at preflight).
            record.attempts = carriedAttempts
            record.fallback = pendingFallback
            pendingFallback = nil
            try p.store.withBlobWriteLock {
                try p.store.insertRunning(record, blobs: patchBlob.map { [$0] } ?? [])
            }
            runId = id
            recordedRunId = id
        } else if let fb = pendingFallback {
            try p.store.reassign(record, fallback: fb)
            pendingFallback = nil
        }
        Trace.mark("run recorded as running")
        let d = try dispatcher(p, backend: backend)
        d.recycleTaskDirs = slot != nil
        let handles: [TaskHandle]
        do {
            handles = try d.submit([task], resources: p.spec.resources, records: [record])
        } catch let e as RemoteError {
            if backend.capabilities.sharesFileSystem { FileIO.removeTree(task.taskDir) }
            throw failure(.submit, e)
        } catch let e as BackendError {
            // sbatch refused the job.
            if backend.capabilities.sharesFileSystem { FileIO.removeTree(task.taskDir) }
            throw failure(.submit, e)
        } catch let e as ExecutionError where !backend.capabilities.runsInProcess {
            if backend.capabilities.sharesFileSystem { FileIO.removeTree(task.taskDir) }
            throw failure(.submit, e)
        } catch {
            try? p.store.markFailed(runId: id, message: "could not be submitted: \(error)")
            if backend.capabilities.sharesFileSystem { FileIO.removeTree(task.taskDir) }
            throw error
        }
        if request.detach && backend.capabilities.outlivesSubmitter {
            record.jobId = handles.first?.jobId
            log("\(backend.name): submitted run \(id) as job \(record.jobId ?? "?"); `repro wait \(id)` picks it up")
            return RunOutcome(record: record, cache: .miss, outputsDir: nil, outputPaths: [:])
        }
        let outcome: RunOutcome
        do {
            outcome = try wait(handles, dispatcher: d, fallback: record)
        } catch let e as RemoteError where !backend.capabilities.runsInProcess {
            // The job was submitted: whatever the error, it is neither cancelled nor run again
            // here (it may still finish); no attempt is listed until its fate is known.
            throw BackendFailure(stage: .running, error: e, attempt: nil)
        }
        if outcome.record.status == .failed, d.lostRuns.contains(id) {
            throw BackendFailure(stage: .lost, error: ExecutionError(outcome.record.message ?? "lost by the scheduler"), attempt: nil)
        }
        return outcome
    }

    /// The error a backend failure ends in when nothing else is tried: what happened, why
    /// nothing else is tried, and what to do; the original kind (and exit code) kept.
    static func failed(_ f: BackendFailure, backend: String, runId: String?, why: String, store: Store) -> any Error {
        var text = f.stage == .running
            ? "\(backend) could not be asked about run \(runId ?? "?") (a backend failure, not the simulation's): \(f.message)"
            : "\(backend) failed this run (a backend failure, not the simulation's): \(f.message)"
        if !why.isEmpty { text += ". " + why.prefix(1).uppercased() + why.dropFirst() }
        if let id = runId, f.stage == .running {
            let auth = (f.error as? RemoteError)?.kind == .auth
            text += ". Run \(id) stays recorded as running: "
                + (auth ? "refresh the credentials, then `repro wait \(id)` collects it"
                    : "`repro wait \(id)` collects it once \(backend) answers")
        } else if let id = runId, f.stage == .submit {
            try? store.markFailed(runId: id, message: text)
        }
        switch f.error {
        case let e as RemoteError: return e.with(message: text)
        case let e as BackendError: return BackendError(text, kind: e.kind)
        default: return ExecutionError(text, cause: f.error)
        }
    }
}
