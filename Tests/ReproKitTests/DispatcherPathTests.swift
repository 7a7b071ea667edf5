import Foundation
import XCTest

@testable import ReproExecution
@testable import ReproKit
@testable import ReproStore
@testable import ReproSupport
import ReproTestSupport

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

    func setUp(fates: [ScriptedBackend.Fate]) throws -> Setup {
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
        return Setup(runner: runner, prepared: p, backend: ScriptedBackend(local, fates: fates), environment: env, specPath: req.specPath, repo: repo)
    }

    /// Submits one task and drives it to the end with `maxRetries`; returns the stored record.
    func drive(_ s: Setup, maxRetries: Int) throws -> (RunRecord, [Dispatcher.Finished]) {
        let p = s.prepared
        let (task, record) = try Runner.makeTask(
            p, specPath: s.specPath, environment: s.environment, backend: s.backend, runId: HostInfo.newRunId(), patchBlob: nil)
        try p.store.insertRunning(record)
        let d = Dispatcher(store: p.store, backend: s.backend, log: { _ in }, maxRetries: maxRetries, resultsDir: { _ in nil })
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
}
