import Foundation
import Logging
import ReproExecution
import ReproSupport
import ReproGit
import ReproStore

/// What `repro verify` was asked to do.
public struct VerifyRequest: Sendable {
    /// A spec file or a run id.
    public var target: String
    public var backends: [String] = [Backends.local, SlurmBackend.typeName]
    public var runs = 1
    public var perturb = false
    /// `--set` overrides, for a spec file target.
    public var overrides: [String] = []
    public var environment: [String: String]

    public init(target: String, environment: [String: String]) {
        self.target = target
        self.environment = environment
    }
}

/// The answer: one verdict per output and overall, the runs compared, and with --perturb the
/// variations found responsible for a difference.
public struct VerifyReport: Sendable {
    public struct Run: Sendable {
        public var runId: String
        public var backend: String
        public var status: RunStatus
        public var jobId: String?
        public var host: String
        /// nil for a plain run; the variation(s) applied for a perturbed one.
        public var variation: String?
        public var json: JSONValue {
            [
                "run_id": .string(runId), "backend": .string(backend), "status": .string(status.rawValue), "job_id": jobId.json,
                "host": .string(host), "variation": variation.json,
            ]
        }
    }

    /// The overall answer, worst first: a run that did not succeed fails the verification.
    public enum Verdict: String, Sendable {
        case identical = "IDENTICAL", equivalent = "EQUIVALENT", divergent = "DIVERGENT", failed = "FAILED"
    }
    public var verdict: Verdict
    public var key: String
    public var name: String
    public var tolerance: Tolerance
    public var runs: [Run] = []
    public var outputs: [OutputComparison] = []
    public var causes: [String] = []
    /// Perturbations that could not be applied on this machine, each with why (a verdict of
    /// IDENTICAL says nothing about them).
    public var notApplied: [String] = []
    /// The thread counts the perturbed runs tried.
    public var threadCounts: [Int] = []
    public var verificationId: String = ""

    public var exitCode: Int32 {
        switch verdict {
        case .identical, .equivalent: return 0
        case .divergent: return 3
        case .failed: return 1
        }
    }

    public var json: JSONValue {
        [
            "verdict": .string(verdict.rawValue), "key": .string(key), "name": .string(name),
            "tolerance": ["rtol": .double(tolerance.rtol), "atol": .double(tolerance.atol), "ulps": .int(Int64(tolerance.ulps))],
            "runs": .array(runs.map(\.json)), "outputs": .array(outputs.map(\.json)), "causes": .array(causes.map { .string($0) }),
            "not_applied": .array(notApplied.map { .string($0) }), "thread_counts": .array(threadCounts.map { .int(Int64($0)) }),
            "verification_id": .string(verificationId),
        ]
    }
}

/// Reruns one identity fresh on each backend (and under perturbations) and compares every
/// output of every run with the first.
public final class Verifier {
    let request: VerifyRequest
    let logger: Logger
    let log: (String) -> Void

    public init(_ request: VerifyRequest, logger: Logger = Logger(label: "repro.verify")) {
        self.request = request
        self.logger = logger
        self.log = { logger.notice("\($0)") }
    }

    /// Variations that must not change a reproducible simulation, in the spirit of reprotest.
    struct Variation: Sendable {
        var name: String
        var apply: @Sendable (inout TaskSpec, SimulationSpec) -> Bool  // false: not applicable to this spec
    }

    static let threadVariables = ["OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", "JULIA_NUM_THREADS"]


    public func run() throws -> VerifyReport {
        // The target: a spec file, or a run, re-executed from the identity in its record (so
        // runs made with --set, from a subdirectory, or as sweep points verify as they ran).
        let p: Runner.Prepared
        let specPath: String
        var runner = Runner(RunRequest(specPath: request.target, environment: request.environment), logger: logger)
        if FileManager.default.fileExists(atPath: request.target) {
            var runReq = RunRequest(specPath: request.target, environment: request.environment)
            runReq.noCache = true
            runReq.overrides = request.overrides
            runner = Runner(runReq, logger: logger)
            p = try runner.prepare()
            specPath = request.target
        } else {
            guard request.overrides.isEmpty else {
                throw ConfigError("--set applies to a spec file; a run is verified exactly as it was recorded")
            }
            let repo = try GitRepository(discoveringFrom: FileManager.default.currentDirectoryPath)
            let store = try Store(root: Store.defaultRoot(repoRoot: repo.workdir, environment: request.environment))
            let r = try store.run(matching: request.target)
            // Tolerances are not part of a record: the spec file's, when it is still there.
            let file = r.specPath.hasPrefix("/") ? r.specPath : repo.workdir + "/" + r.specPath
            let tolerance = (try? SpecLoader.load(path: file))?.verify ?? .exact
            let spec = try SimulationSpec(record: r, tolerance: tolerance)
            p = try runner.prepare(spec, repoFrom: repo.workdir)
            specPath = r.specPath.hasPrefix("/") ? r.specPath : repo.workdir + "/" + r.specPath
            guard p.key == r.key else {
                throw ConfigError(
                    "run \(r.runId) cannot be re-executed here: its code or inputs differ from the run's (key now "
                        + "\(p.key.prefix(12)), the run's \(r.key.prefix(12))); `repro why` shows what changed. Check out commit "
                        + "\(r.commit.prefix(12)) (with its inputs) to verify it")
            }
        }
        // A verdict needs two executions: fresh runs, or the stored run and a fresh one.
        let fresh = request.backends.count * request.runs
        var stored: RunRecord?
        if fresh < 2 && !request.perturb {
            stored = try p.store.servableRun(forKey: p.key, maxAge: p.config.maxAge)
            guard stored != nil else {
                throw ConfigError(
                    "verify compares at least two executions, and \(fresh) fresh run on \(request.backends.joined(separator: ",")) "
                        + "with no stored run of key \(p.key.prefix(12)) is one: add --runs 2, a second backend "
                        + "(--backends local,slurm), or --perturb; or `repro run` it first to compare against that run")
            }
            log("verify: comparing a fresh run with stored run \(stored?.runId ?? "")")
        }
        // The key's lock, as run and sweep take it: another repro then sees these runs as
        // alive (not dead runs to mark interrupted and clean up) and waits rather than racing.
        let locks = p.store.keyLocks
        if try !locks.tryLock(p.key) {
            log("another repro process is computing key \(p.key.prefix(12)); waiting for it")
            try locks.lock(p.key)
        }
        defer { locks.unlock(p.key) }
        var report = VerifyReport(verdict: .identical, key: p.key, name: p.spec.name, tolerance: p.spec.verify)
        let patchBlob = try p.patch.map { try p.store.putReferencedBytes($0).sha256 }
        var finished: [(RunRecord, String?)] = stored.map { [($0, "stored run")] } ?? []

        // Every backend ready (a token, credentials) before the first one runs anything.
        let backends = try request.backends.map {
            try Backends.make($0, store: p.store, repoRoot: p.repo.workdir, jobs: 1, environment: request.environment, config: p.config)
        }
        for b in backends { try b.preflight() }
        for backend in backends {
            let name = backend.name
            var tasks: [TaskSpec] = []
            var records: [RunRecord] = []
            for _ in 0..<request.runs {
                let (t, r) = try Runner.makeTask(
                    p, specPath: specPath, environment: request.environment, backend: backend, runId: HostInfo.newRunId(),
                    patchBlob: patchBlob)
                tasks.append(t)
                records.append(r)
            }
            log("verify: \(request.runs) fresh run(s) on \(name)")
            finished += try execute(tasks, records, backend: backend, p: p, invalidate: nil).map { ($0, nil) }
        }

        var reference = finished.first { $0.0.status == .succeeded }?.0
        if request.perturb {
            finished += try perturb(p, specPath: specPath, patchBlob: patchBlob, reference: &reference, report: &report)
        }

        report.runs = finished.map {
            VerifyReport.Run(runId: $0.0.runId, backend: $0.0.backend, status: $0.0.status, jobId: $0.0.jobId, host: $0.0.host, variation: $0.1)
        }
        if let reference {
            report.outputs = try compareAll(reference, finished.map(\.0), store: p.store, tolerance: p.spec.verify)
        }
        let worst = report.outputs.map(\.verdict)
        if finished.contains(where: { $0.0.status != .succeeded }) || reference == nil {
            report.verdict = .failed
        } else if worst.contains(.divergent) {
            report.verdict = .divergent
        } else if worst.contains(.equivalent) {
            report.verdict = .equivalent
        }
        report.verificationId = HostInfo.newRunId()
        try p.store.addVerification(
            id: report.verificationId, key: p.key, verdict: report.verdict.rawValue,
            backends: .array(request.backends.map { .string($0) }), runs: .array(report.runs.map(\.json)),
            details: ["outputs": .array(report.outputs.map(\.json)), "causes": .array(report.causes.map { .string($0) }),
                "perturb": .bool(request.perturb), "runs_per_backend": .int(Int64(request.runs))])
        return report
    }

    /// Runs tasks to the end on a backend and returns their records. `invalidate`: a reason
    /// that keeps these runs from ever serving cache hits (perturbed runs).
    func execute(_ tasks: [TaskSpec], _ records: [RunRecord], backend: Backend, p: Runner.Prepared, invalidate: String?) throws
        -> [RunRecord]
    {
        // Perturbed runs are written invalidated in the transaction that records them: no
        // moment exists (not even if verify is killed) in which one could be served.
        try p.store.insertRunningMany(records, invalidatedReason: invalidate)
        let d = Dispatcher(store: p.store, backend: backend, log: log, maxRetries: 2, outageLimit: p.config.orchestration.outageLimit, resultsDir: { _ in nil })
        d.announceStates = false
        let handles = try d.submit(tasks, resources: p.spec.resources, records: records)
        var out: [RunRecord] = []
        try d.drive(handles, onFinished: { out.append($0.record) })
        let order = Dictionary(uniqueKeysWithValues: tasks.enumerated().map { ($1.runId, $0) })
        return out.sorted { (order[$0.runId] ?? 0) < (order[$1.runId] ?? 0) }
    }

    /// One local run under every variation; if it differs, each variation alone, to name the
    /// responsible ones. A plain rerun (a different start time) comes first: when even that
    /// differs, the simulation is not deterministic and no variation can be blamed.
    func perturb(_ p: Runner.Prepared, specPath: String, patchBlob: String?, reference: inout RunRecord?, report: inout VerifyReport)
        throws -> [(RunRecord, String?)]
    {
        let backend = LocalBackend(store: p.store, jobs: 1, environment: request.environment)
        var results: [(RunRecord, String?)] = []
        func runVaried(_ chosen: [Variation], label: String) throws -> RunRecord? {
            let runId = HostInfo.newRunId()
            var (t, r) = try Runner.makeTask(
                p, specPath: specPath, environment: request.environment, backend: backend, runId: runId, patchBlob: patchBlob)
            var applied: [String] = []
            for v in chosen where v.apply(&t, p.spec) { applied.append(v.name) }
            if chosen.contains(where: { $0.name == "output path" }) {
                // Same files, staged under another, awkward path.
                let dir = backend.taskRoot + "/verify perturbed/run-" + runId
                let old = t.taskDir
                t.taskDir = dir
                t.env = t.env.mapValues { $0.replacingOccurrences(of: old, with: dir) }
                t.argv = t.argv.map { $0.replacingOccurrences(of: old, with: dir) }
                t.configJSON = (try? JSONParser.parse(t.configJSON.canonical.replacingOccurrences(of: old, with: dir))) ?? t.configJSON
                if t.env["HOME"]?.hasPrefix(old) == true { t.env["HOME"] = dir + "/home" }
                r.taskRef = dir
            }
            if let home = t.env["HOME"], home.hasPrefix(t.taskDir) { try FileIO.makeDirectory(home) }
            // The record says what this run saw (TZ, LANG, HOME, thread counts), not the base's.
            r.env = SimulationEnvironment.recorded(t.env, passthrough: p.spec.envPassthrough, key: try p.store.secretKey())
            guard !applied.isEmpty || chosen.isEmpty else { return nil }
            let rec = try execute([t], [r], backend: backend, p: p, invalidate: "verify --perturb run (\(label))").first
            if let rec { results.append((rec, label)) }
            return rec
        }
        if reference == nil {
            reference = try runVaried([], label: "baseline")
        }
        guard let base = reference, base.status == .succeeded else { return results }
        // A different start time: the same run, at least a second later.
        usleep(1_100_000)
        let rerun = try runVaried([], label: "start time")
        if let rerun, try !same(base, rerun, store: p.store, tolerance: p.spec.verify) {
            // A simulation that writes its own output folder or run id into its results differs
            // on every rerun for that reason alone: name it, rather than blaming the clock.
            let diffs = try compareAll(base, [rerun], store: p.store, tolerance: p.spec.verify).flatMap(\.differences)
            let mentionsOwnPath = diffs.contains { d in
                (d.old.contains(base.runId) || d.old.contains("/run-")) && (d.new.contains(rerun.runId) || d.new.contains("/run-"))
            }
            if mentionsOwnPath {
                report.causes = ["output path"]
                log("verify: a plain rerun differs where the simulation writes its own output path or run id ($REPRO_OUTDIR, $REPRO_RUN_ID) into its results")
            } else {
                report.causes = ["start time"]
                log("verify: a plain rerun already differs: the simulation is not deterministic (time, unseeded randomness, ...)")
            }
            return results
        }
        let plan = Perturbations.make(storeRoot: p.store.root)
        report.notApplied += plan.notApplied
        for n in plan.notApplied { log("verify: not applied: \(n)") }
        let all = plan.variations
        var threads = plan.threadCounts.map(Perturbations.threads)
        if Verifier.threadVariables.allSatisfy({ p.spec.env[$0] != nil }) {
            threads = []
            report.notApplied.append("thread counts: the spec sets every thread variable (\(Verifier.threadVariables.joined(separator: ", ")))")
        } else {
            report.threadCounts = plan.threadCounts
        }
        // Every variation at once, once per thread count (one count cannot stand for all: a
        // sum split in 3 can match where a split in 2 does not).
        var differs = false
        for t in threads.isEmpty ? [nil] : threads.map({ Optional($0) }) {
            let chosen = all + (t.map { [$0] } ?? [])
            log("verify: one run under all variations (\(chosen.map(\.name).joined(separator: ", ")))")
            if let together = try runVaried(chosen, label: chosen.map(\.name).joined(separator: ", ")),
                try !same(base, together, store: p.store, tolerance: p.spec.verify)
            {
                differs = true
                break
            }
        }
        guard differs else { return results }
        for v in all + threads {
            log("verify: rerunning with \(v.name) alone")
            if let solo = try runVaried([v], label: v.name), try !same(base, solo, store: p.store, tolerance: p.spec.verify) {
                report.causes.append(v.name)
            }
        }
        if report.causes.isEmpty { report.causes = ["a combination of variations"] }
        return results
    }

    func same(_ a: RunRecord, _ b: RunRecord, store: Store, tolerance: Tolerance) throws -> Bool {
        guard b.status == .succeeded else { return false }
        return try compareAll(a, [b], store: store, tolerance: tolerance).allSatisfy { $0.verdict == .identical }
    }

    /// Per output name: the worst comparison of any run against the reference.
    func compareAll(_ reference: RunRecord, _ runs: [RunRecord], store: Store, tolerance: Tolerance) throws -> [OutputComparison] {
        let refOut = Dictionary(reference.outputs.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var names = Set(refOut.keys)
        for r in runs where r.status == .succeeded { names.formUnion(r.outputs.map(\.name)) }
        var out: [OutputComparison] = []
        for name in names.sorted() {
            var agg = OutputComparison(name: name, verdict: .identical, format: "sha256")
            for r in runs where r.status == .succeeded && r.runId != reference.runId {
                let other = r.outputs.first { $0.name == name }
                guard let x = refOut[name], let y = other else {
                    agg.verdict = .divergent
                    agg.differenceCount += 1
                    agg.differences.append(.init(location: "presence", old: refOut[name] == nil ? "(absent)" : "present",
                        new: other == nil ? "(absent) in run \(r.runId)" : "present in run \(r.runId)"))
                    continue
                }
                if x.sha256 == y.sha256 { continue }
                let c = try OutputComparator.compare(name: name, x, y, store: store, tolerance: tolerance)
                agg.format = c.format
                agg.maxUlps = max(agg.maxUlps, c.maxUlps)
                agg.maxRel = max(agg.maxRel, c.maxRel)
                if c.maxAbs > agg.maxAbs { agg.maxAbs = c.maxAbs; agg.maxAbsAt = c.maxAbsAt }
                if c.verdict == .divergent {
                    if agg.verdict != .divergent { agg.differences = [] }
                    agg.verdict = .divergent
                    agg.differenceCount = max(agg.differenceCount, c.differenceCount)
                    if agg.differences.isEmpty { agg.differences = c.differences }
                } else if agg.verdict == .identical {
                    agg.verdict = .equivalent
                }
                agg.sizes = c.sizes
            }
            out.append(agg)
        }
        return out
    }
}
