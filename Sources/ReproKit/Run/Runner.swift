import Foundation
import Logging
import ReproExecution
import ReproSupport
import ReproGit
import ReproStore

/// Runs a spec: resolves its identity, serves a cache hit or executes it on the local backend,
/// and records everything in the store. This is the whole of `repro run` below the CLI.
public final class Runner {
    public let request: RunRequest
    /// Progress and diagnostics for people, as notices (the executable decides where they go).
    let log: (String) -> Void
    /// Set between a backend failure and the local attempt that takes the run over.
    var pendingFallback: Fallback?
    /// Failed attempts made before the run had a record.
    var carriedAttempts: [Attempt] = []
    /// Explains (and logs why) a miss about to run. For a local run it is done while the task
    /// executes (it reads the store, which a short run need not wait for); earlier when something
    /// is printed or asked before the task starts (`settleExplanation`).
    var pendingExplanation: (() -> Void)?
    /// The run this runner recorded for the key (not what its miss is compared with).
    var recordedRunId: String?

    /// Runs the pending explanation now, once.
    func settleExplanation() {
        guard let explain = pendingExplanation else { return }
        pendingExplanation = nil
        explain()
    }

    public init(_ request: RunRequest, logger: Logger = Logger(label: "repro.run")) {
        self.request = request
        self.log = { logger.notice("\($0)") }
    }

    /// Everything about a run that is known before it executes.
    struct Prepared {
        var spec: SimulationSpec
        /// What the points of a sweep share (one object for all of them in the usual sweep:
        /// 208 bytes fewer per point than holding each inline).
        let shared: Shared
        var seed: Int64
        var key: String
        var configHash: String

        var repo: GitRepository { shared.repo }
        var store: Store { shared.store }
        var identity: CodeIdentity { shared.identity }
        var patch: [UInt8]? { shared.patch }
        var inputs: [InputFile] { shared.inputs }
        /// `.repro/config.yaml`, read once per command.
        var config: StoreConfig { shared.config }
        var bytecodeDir: String { shared.bytecodeDir }

        final class Shared {
            let repo: GitRepository
            let store: Store
            let identity: CodeIdentity
            let patch: [UInt8]?
            let inputs: [InputFile]
            let config: StoreConfig
            /// Where Python keeps this code identity's bytecode (once per identity, not per point).
            let bytecodeDir: String

            init(repo: GitRepository, store: Store, identity: CodeIdentity, patch: [UInt8]?, inputs: [InputFile], config: StoreConfig) {
                bytecodeDir = SimulationEnvironment.bytecodeDir(storeRoot: store.root, code: identity.keyJSON, patch: patch)
                self.repo = repo
                self.store = store
                self.identity = identity
                self.patch = patch
                self.inputs = inputs
                self.config = config
            }
        }
    }

    public func run() throws(ReproErrorBox) -> RunOutcome {
        try boxingErrors {
            let p = try prepare()
            // An unknown backend is refused before anything is served or run.
            try Backends.validate(backendName(p), config: p.config)
            let locks = p.store.keyLocks
            if try !locks.tryLock(p.key) {
                log("another repro process is computing key \(p.key.prefix(12)); waiting for it")
                try locks.lock(p.key)
            }
            defer { locks.unlock(p.key) }
            if !request.noCache, let hit = try p.store.servableRun(forKey: p.key, maxAge: p.config.maxAge) {
                Trace.mark("cache lookup: hit")
                defer { Trace.mark("hit served") }
                return try serveHit(hit, p)
            }
            Trace.mark("cache lookup: miss")
            // Already submitted to a scheduler by another repro (say with --detach): wait for
            // that run instead of computing the key twice.
            if !request.noCache, let live = try p.store.submittedRun(forKey: p.key),
                let ref = live.taskRef
            {
                log("key \(p.key.prefix(12)) is already running as run \(live.runId) (\(live.backend) job \(live.jobId ?? "?")); waiting for it")
                let backend = try Backends.make(
                    live.backend, store: p.store, repoRoot: p.repo.workdir, jobs: 1, environment: request.environment, config: p.config)
                let handle = TaskHandle(runId: live.runId, ref: ref, jobId: live.jobId, attempt: live.resubmissions)
                return try wait([handle], dispatcher: try dispatcher(p, backend: backend), fallback: live)
            }
            // The team may have computed it already.
            let team = try TeamCacheUse.open(
                config: p.config, store: p.store, repoRoot: p.repo.workdir, environment: request.environment, log: log)
            if !request.noCache, let team, try team.lookup([p.key]) > 0,
                let hit = try p.store.servableRun(forKey: p.key, maxAge: p.config.maxAge)
            {
                return try serveHit(hit, p)
            }
            // Say why compute is needed (the question users ask most), before anything else is
            // printed or asked, or while a local task runs.
            var why: String?
            if !request.noCache {
                pendingExplanation = { [unowned self] in
                    why = (try? explain(p, knownMiss: true, running: recordedRunId))?.line
                    Trace.mark("miss explained")
                    if let why { log(why) }
                }
            }
            defer { settleExplanation() }
            var outcome = try execute(p)
            settleExplanation()
            outcome.missReason = request.noCache ? "--no-cache" : why
            if let team, outcome.record.status == .succeeded, let done = try p.store.run(id: outcome.record.runId) {
                team.publish([done], store: p.store, repoRoot: p.repo.workdir)
            }
            return outcome
        }
    }

    /// Loads the spec and computes the key; no side effects beyond opening the store.
    func prepare() throws -> Prepared {
        Trace.mark("runner started")
        let spec = try SpecLoader.load(path: request.specPath, overrides: request.overrides)
        Trace.mark("spec loaded")
        let specDir = (absolute(request.specPath) as NSString).deletingLastPathComponent
        return try prepare(spec, repoFrom: specDir)
    }

    /// Computes the key of an already loaded spec (one rebuilt from a run record, say) in the
    /// repository containing `dir`.
    func prepare(_ spec: SimulationSpec, repoFrom dir: String) throws -> Prepared {
        let repo = try GitRepository(discoveringFrom: dir)
        Trace.mark("git repository opened")
        let store = try Store(root: Store.defaultRoot(repoRoot: repo.workdir, environment: request.environment))
        Trace.mark("store opened")
        RepoIgnore.ensure(repo: repo, storeRoot: store.root)
        try Recovery.markDeadRunsInterrupted(store)
        HookRefresh.settleOwed(store: store, repo: repo)
        Trace.mark("recovery checked")

        let preparer = Preparer(
            repo: repo, store: store, config: try StoreConfig.load(storeRoot: store.root, repoRoot: repo.workdir), allowDirty: request.allowDirty,
            specPath: request.specPath)
        try TrustedKeys.reconcile(store: store, config: preparer.config, repoRoot: repo.workdir)
        return try preparer.prepare(spec)
    }

    func resultsDir(_ p: Prepared) -> String {
        if let o = request.outDir { return absolute(o) }
        return ResultsDir.path(repoRoot: p.repo.workdir, name: p.spec.name, key: p.key)
    }

    func serveHit(_ hit: RunRecord, _ p: Prepared) throws -> RunOutcome {
        let dir = resultsDir(p)
        var paths: [String: String] = [:]
        for o in hit.outputs {
            let dest = dir + "/" + o.name
            if !Materializer.isCurrent(dest, sha256: o.sha256, size: o.size) {
                try p.store.materializeBlob(o.sha256, into: dir, name: o.name)
            }
            paths[o.name] = dest
        }
        try p.store.recordHit(runId: hit.runId, materialized: hit.outputs.compactMap { o in paths[o.name].map { ($0, o.sha256, hit.runId) } })
        var record = hit
        record.hitCount += 1
        return RunOutcome(record: record, cache: .hit, outputsDir: dir, outputPaths: paths)
    }

    private func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }
}
