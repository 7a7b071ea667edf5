import Foundation
import XCTest

@testable import ReproExecution
@testable import ReproKit
@testable import ReproStore
@testable import ReproSupport
import ReproTestSupport
import ReproRemote

/// The dispatcher's rare paths (a task lost to the machine, lost too often, forgotten by the
/// scheduler) on the local backend with a scripted fate: milliseconds each, where the real
/// schedulers' versions (ConformanceTests) take tens of seconds.
final class DispatcherPathTests: XCTestCase {
    struct Setup {
        var runner: Runner
        var prepared: Runner.Prepared
        var backend: ScriptedBackend
        var environment: [String: String]
        var specPath: String
        /// Held so the repository outlives the test's use of it.
        var repo: TempRepo
    }

    func setUp(fates: [ScriptedBackend.Fate], pollErrors: [RemoteError] = []) throws -> Setup {
        let repo = try TempRepo()
        repo.write("sim.yaml", "name: fast\ncommand: [sh, -c, 'echo ok > \"$REPRO_OUTDIR/r.txt\"']\ncode: [sim.yaml]\n")
        repo.commitAll("initial")
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "REPRO_STORE")
        var req = RunRequest(specPath: repo.path + "/sim.yaml", environment: env)
        req.noCache = true
        let runner = Runner(req)
        let p = try runner.prepare()
        let local = try Backends.make("local", store: p.store, repoRoot: p.repo.workdir, jobs: 1, environment: env, config: p.config)
        return Setup(runner: runner, prepared: p, backend: ScriptedBackend(local, fates: fates, pollErrors: pollErrors), environment: env, specPath: req.specPath, repo: repo)
    }

    /// Submits one task and drives it to the end with `maxRetries`; returns the stored record.
    func drive(_ s: Setup, maxRetries: Int, outageLimit: Double = 3600) throws -> (RunRecord, [Dispatcher.Finished]) {
        let p = s.prepared
        let (task, record) = try Runner.makeTask(
            p, specPath: s.specPath, environment: s.environment, backend: s.backend, runId: HostInfo.newRunId(), patchBlob: nil)
        try p.store.insertRunning(record)
        let d = Dispatcher(store: p.store, backend: s.backend, log: { _ in }, maxRetries: maxRetries, outageLimit: outageLimit, resultsDir: { _ in nil })
        d.outageBackoff = 0.05
        let handles = try d.submit([task], resources: [:], records: [record])
        var finished: [Dispatcher.Finished] = []
        try d.drive(handles, onFinished: { finished.append($0) })
        return (try XCTUnwrap(try p.store.run(id: task.runId)), finished)
    }

    func testALostTaskIsResubmittedAndItsSecondAttemptIsRecorded() throws {
        let s = try setUp(fates: [.lost("NODE_FAIL")])
        let (run, finished) = try drive(s, maxRetries: 2)
        XCTAssertEqual(finished.count, 1, "ingested exactly once")
        XCTAssertEqual(run.status, .succeeded, run.message ?? "")
        XCTAssertEqual(run.resubmissions, 1)
        XCTAssertEqual(run.attempts.map(\.outcome), ["succeeded"])
        XCTAssertEqual(run.attempts.first?.resubmission, 1)
        XCTAssertFalse(run.outputs.isEmpty, "the second attempt's outputs are the run's")
        XCTAssertEqual(s.backend.played.map(\.attempt), [0])
    }

    func testATaskLostMoreOftenThanAllowedIsABackendFailure() throws {
        let s = try setUp(fates: [.lost("NODE_FAIL"), .lost("PREEMPTED"), .lost("NODE_FAIL")])
        let (run, _) = try drive(s, maxRetries: 2)
        XCTAssertEqual(run.status, .failed)
        XCTAssertTrue(run.message?.contains("lost 3 time(s) (NODE_FAIL); giving up") ?? false, run.message ?? "")
        XCTAssertEqual(run.attempts.map(\.outcome), [Attempt.backendFailure], "the machine failed, not the simulation")
        XCTAssertEqual(run.resubmissions, 2)
        XCTAssertTrue(run.outputs.isEmpty)
        XCTAssertEqual(s.backend.played.map(\.attempt), [0, 1, 2])
    }

    func testWithNoRetriesAllowedALostTaskIsNotSubmittedAgain() throws {
        let s = try setUp(fates: [.lost("NODE_FAIL")])
        let (run, _) = try drive(s, maxRetries: 0)
        XCTAssertEqual(run.status, .failed)
        XCTAssertEqual(run.resubmissions, 0)
        XCTAssertEqual(s.backend.played.count, 1)
    }

    func testAVanishedTaskFailsWithTheSchedulersWordAndStoresNothingOfIt() throws {
        let s = try setUp(fates: [.vanished])
        let (run, finished) = try drive(s, maxRetries: 2)
        XCTAssertEqual(finished.count, 1)
        XCTAssertEqual(run.status, .failed)
        XCTAssertTrue(run.message?.contains("no longer knows job") ?? false, run.message ?? "")
        XCTAssertTrue(run.outputs.isEmpty, "no manifest: nothing it may have written is trusted")
        XCTAssertEqual(run.resubmissions, 0, "a forgotten job is not resubmitted: it may have run")
    }

    /// A throttled or failing poll is waited out (backoff, Retry-After read): the task is
    /// ingested once polls answer, and nothing is cancelled.
    func testThrottledAndFailingPollsAreWaitedOutAndNothingIsCancelled() throws {
        var busy = RemoteError("Azure Batch GET /jobs: HTTP 503 ServerBusy", kind: .throttled, httpStatus: 503)
        busy.retryAfter = 0.3
        let s = try setUp(fates: [], pollErrors: [
            RemoteError("AWS Batch describejobs: TooManyRequestsException", kind: .throttled, httpStatus: 429), busy,
            RemoteError("connection refused", kind: .unreachable),
        ])
        let t0 = Clock.monotonic()
        let (run, finished) = try drive(s, maxRetries: 2)
        XCTAssertEqual(run.status, .succeeded, run.message ?? "")
        XCTAssertEqual(finished.count, 1)
        XCTAssertEqual(s.backend.cancelCalls, 0, "a poll error never cancels a job")
        XCTAssertGreaterThanOrEqual(Clock.monotonic() - t0, 0.3, "Retry-After was honoured")
    }

    /// An outage longer than outage_limit ends the wait with an error that says so; the task
    /// is not cancelled and its record stays running (`repro wait` collects it later).
    func testAnOutagePastTheLimitStopsWaitingWithoutCancelling() throws {
        let s = try setUp(fates: [], pollErrors: Array(repeating: RemoteError("connection refused", kind: .unreachable), count: 1000))
        XCTAssertThrowsError(try drive(s, maxRetries: 2, outageLimit: 1)) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains("has not answered for") && text.contains("outage_limit") && text.contains("nothing was cancelled"), text)
            XCTAssertEqual((e as? RemoteError)?.kind, .unreachable)
        }
        XCTAssertEqual(s.backend.cancelCalls, 0)
        let runs = try s.prepared.store.runs(forKey: s.prepared.key)
        XCTAssertEqual(runs.map(\.status), [.running], "the run stays recorded as running")
    }

    /// The one fallback rule, every kind of failure at every stage.
    func testTheFallbackRuleByStageAndKind() {
        let short = RuntimeEstimate(seconds: 60, tier: .parametric, detail: "")
        let rule = FallbackRule(allowed: true, estimate: short, localBelow: 3600, retries: 1)
        // Outages before anything runs: retried, then run here.
        XCTAssertEqual(rule.decide(stage: .submit, kind: .outage, onLocal: false, submitFailures: 0), .retry)
        XCTAssertEqual(rule.decide(stage: .submit, kind: .outage, onLocal: false, submitFailures: 1), .fallBack)
        XCTAssertEqual(rule.decide(stage: .lost, kind: .configuration, onLocal: false, submitFailures: 0), .fallBack, "a lost job is capacity")
        // A setup error is never retried or hidden.
        guard case .fail(let why) = rule.decide(stage: .submit, kind: .configuration, onLocal: false, submitFailures: 0) else {
            return XCTFail("a configuration error fell back")
        }
        XCTAssertTrue(why.contains("setup's fault") && why.contains("--backend local"), why)
        // A submitted job is never run twice, whatever the error.
        for kind in [FailureKind.outage, .configuration] {
            guard case .fail(let w) = rule.decide(stage: .running, kind: kind, onLocal: false, submitFailures: 0) else {
                return XCTFail("a submitted job fell back (\(kind))")
            }
            XCTAssertTrue(w.contains("may still finish"), w)
        }
        // Outages with fallback off, or too long to run here.
        XCTAssertNotEqual(FallbackRule(allowed: false, estimate: short, localBelow: 3600, retries: 0)
            .decide(stage: .submit, kind: .outage, onLocal: false, submitFailures: 0), .fallBack)
        let long = RuntimeEstimate(seconds: 7200, tier: .parametric, detail: "")
        guard case .fail(let w) = FallbackRule(allowed: true, estimate: long, localBelow: 3600, retries: 0)
            .decide(stage: .submit, kind: .outage, onLocal: false, submitFailures: 0) else { return XCTFail("a 2 h run fell back") }
        XCTAssertTrue(w.contains("not under local_below"), w)
        // Kinds from the errors themselves.
        XCTAssertEqual(FailureKind.of(RemoteError("x", kind: .throttled)), .outage)
        XCTAssertEqual(FailureKind.of(RemoteError("x", kind: .auth)), .configuration)
        XCTAssertEqual(FailureKind.of(RemoteError("x", kind: .client)), .configuration)
        XCTAssertEqual(BackendError.kind(ofSlurmMessage: "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)"), .outage)
        XCTAssertEqual(BackendError.kind(ofSlurmMessage: "sbatch: error: Batch job submission failed: Invalid partition name specified"), .configuration)
    }

    func testRetryAfterIsReadAsSecondsOrADate() {
        let e = RemoteError("busy", kind: .throttled, httpStatus: 503)
        XCTAssertEqual(e.retrying(after: ["retry-after": "2"]).retryAfter, 2)
        let inTen = Date().addingTimeInterval(10)
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        let d = e.retrying(after: ["retry-after": f.string(from: inTen)]).retryAfter ?? 0
        XCTAssertTrue(d > 7 && d <= 10, "\(d)")
        XCTAssertNil(e.retrying(after: [:]).retryAfter)
        XCTAssertEqual(RetryPolicy(attempts: 5, baseDelay: 0.01, maxDelay: 0.01).pause(afterAttempt: 0, e.retrying(after: ["retry-after": "3"])), 3)
    }
}

extension DispatcherPathTests {
    /// SubmitJob's client-side limit: a burst of the limit, then the rate; cut to 70% when
    /// throttled, grown back by calls that pass, never above the limit.
    func testAdaptiveRateKeepsToTheLimitAndBacksOffWhenThrottled() {
        final class FakeTime: @unchecked Sendable {
            var now = 0.0
        }
        let t = FakeTime()
        let rate = AdaptiveRate(perSecond: 50, clock: { t.now }, sleep: { t.now += $0 })
        for _ in 0..<150 { rate.acquire() }
        // 50 at once, then 100 more at 50 a second.
        XCTAssertEqual(t.now, 2, accuracy: 0.05)
        rate.throttled()
        XCTAssertEqual(rate.rate, 35, accuracy: 0.001)
        let before = t.now
        for _ in 0..<35 { rate.acquire() }
        XCTAssertGreaterThanOrEqual(t.now - before, 0.97, "at 35 a second after the cut")
        for _ in 0..<10_000 { rate.succeeded() }
        XCTAssertEqual(rate.rate, 50, accuracy: 0.001, "back up to the limit, never past it")
        for _ in 0..<100 { rate.throttled() }
        XCTAssertEqual(rate.rate, 0.5, accuracy: 0.001, "never stops")
    }
}
