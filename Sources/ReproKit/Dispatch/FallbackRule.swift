import Foundation
import ReproExecution
import ReproSupport
import ReproStore

/// The one rule for what a backend failure allows, whatever the backend. Fallback is for
/// outages before anything runs (a service unreachable or busy, a scheduler that lost the job):
/// never for a setup error (an unknown queue, refused credentials: running elsewhere would hide
/// it), and never for a job already submitted (it may still finish: running it again here would
/// compute it twice, and its result would be left behind).
struct FallbackRule {
    /// `--no-fallback` turns it off.
    var allowed: Bool
    var estimate: RuntimeEstimate
    var localBelow: Double
    var retries: Int

    enum Action: Equatable {
        /// Submit to the same backend again after a pause.
        case retry
        /// Run it on this machine instead.
        case fallBack
        /// Report it; `why` says why nothing else is tried.
        case fail(why: String)
    }

    func decide(stage: BackendFailure.Stage, kind: FailureKind, onLocal: Bool, submitFailures: Int) -> Action {
        if onLocal { return .fail(why: "") }
        if stage == .running {
            return .fail(why: "the job was submitted and may still finish: it is never run a second time elsewhere")
        }
        // A job the scheduler lost (a reclaimed host, past repro's resubmissions) is capacity.
        guard kind == .outage || stage == .lost else {
            return .fail(why: "this is the setup's fault, not an outage, so it is not run elsewhere: fix it (`repro backends` checks a backend), or run it here with --backend local")
        }
        if stage == .submit && submitFailures < retries { return .retry }
        guard allowed else { return .fail(why: "not falling back to local (--no-fallback)") }
        guard estimate.seconds < localBelow else {
            return .fail(
                why: "not falling back to local: the estimate \(DurationText.format(estimate.seconds.rounded())) (\(estimate.tier.rawValue)) is not under local_below \(DurationText.format(localBelow))")
        }
        return .fallBack
    }
}
