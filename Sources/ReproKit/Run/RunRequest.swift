import ReproSupport
import ReproStore

/// Asked on Ctrl-C while jobs are queued or running on a scheduler: cancel them (true), or
/// leave them running for `repro status` and `repro wait` (false). The executable decides how
/// to ask (a prompt on a terminal); the default cancels.
public typealias CancelConfirmation = @Sendable (_ count: Int, _ backend: String) -> Bool

/// What `repro run` was asked to do.
public struct RunRequest: Sendable {
    public var specPath: String
    public var overrides: [String] = []
    /// Run even when a succeeded run with the same key exists.
    public var noCache = false
    /// Accept uncommitted changes under the code paths (recorded as a patch).
    public var allowDirty = false
    /// Where to put the outputs; default `results/<name>/<first 12 hex of key>/` in the repo.
    public var outDir: String?
    /// The caller's environment: PATH, HOME, passthrough variables and REPRO_STORE come from here.
    public var environment: [String: String]
    /// Overrides the spec's `backend:`.
    public var backend: String?
    /// Return right after submission (schedulers only); `repro wait` picks the run up.
    public var detach = false
    /// What to do on Ctrl-C with submitted jobs (see `CancelConfirmation`).
    public var confirmCancel: CancelConfirmation = { _, _ in true }
    /// Dispatch even when the estimated cost exceeds a budget.
    public var overBudget = false
    /// Fall back to local after a backend failure when the estimate allows (`--no-fallback`).
    public var fallback = true
    /// Asks a person where to run (the 1-10 h band); nil: nobody to ask (ask_default decides).
    public var ask: Router.Ask? = nil

    public init(specPath: String, environment: [String: String]) {
        self.specPath = specPath
        self.environment = environment
    }
}

/// Whether a run was (or would be) served from the cache.
public enum CacheOutcome: String, Sendable { case hit, miss }

/// What `repro run` did.
public struct RunOutcome: Sendable {
    public typealias Cache = CacheOutcome
    public var record: RunRecord
    public var cache: Cache
    /// Directory the outputs were materialized in (nil when a failed run produced nothing usable).
    public var outputsDir: String?
    public var outputPaths: [String: String]
    /// For a miss: the one-line reason (see `WhyReport.line`).
    public var missReason: String? = nil

    public init(record: RunRecord, cache: Cache, outputsDir: String?, outputPaths: [String: String]) {
        self.record = record
        self.cache = cache
        self.outputsDir = outputsDir
        self.outputPaths = outputPaths
    }

    /// The `--json` object.
    public var json: JSONValue {
        var o = record.json.objectValue ?? [:]
        o["cache"] = .string(cache.rawValue)
        o["outputs_dir"] = outputsDir.json
        o["outputs"] = .array(record.outputs.map { out in
            var j = out.json.objectValue ?? [:]
            j["path"] = outputPaths[out.name].json
            return .object(j)
        })
        if cache == .hit { o["served_from"] = .string(record.runId) }
        if let missReason { o["miss_reason"] = .string(missReason) }
        return .object(o)
    }
}
