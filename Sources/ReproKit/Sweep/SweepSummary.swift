import Foundation
import Logging
import ReproSupport
import ReproStore

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
