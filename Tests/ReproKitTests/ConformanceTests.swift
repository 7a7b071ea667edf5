import Foundation
import XCTest

@testable import ReproExecution
@testable import ReproKit
import ReproTestSupport
@testable import ReproSupport

/// What every backend must do, run against each one: the local pool, SLURM through a shared
/// folder, SLURM over REST through object storage (as a user who cannot read the repository),
/// and AWS Batch through its contract test server. Same specs, same expectations.
final class ConformanceTests: XCTestCase {
    static let backends = ["local", "slurm", "cloud", "aws", "az"]
    /// The AWS Batch and Azure contract servers for this test.
    var batch: AWSBatchContractTests.Server?
    var azure: AzureBatchContractTests.Server?

    /// XCTest keeps every test case object until the process exits (when no deinit runs):
    /// the servers are stopped here, not left running after the tests.
    override func tearDown() {
        batch = nil
        azure = nil
        super.tearDown()
    }

    /// A repository with every backend configured; the environment runs need.
    func setUpRepo() throws -> (TempRepo, [String: String]) {
        try CloudTestEnv.require()
        let repo = try TempRepo()
        chmod(repo.path, 0o700)
        let server = try AWSBatchContractTests.Server()
        batch = server
        let az = try AzureBatchContractTests.Server()
        azure = az
        let container = "conformance-" + UUID().uuidString.prefix(8).lowercased()
        try az.blob().createContainer(container)
        let (bucket, env) = try CloudTestEnv.addCloudBackend(to: repo, extraConfig: """
              aws:
                type: aws-batch
                job_queue: repro-queue
                job_definition: repro-jobdef:1
                staging: s3://REPLACE_BUCKET/aws-staging
                endpoint: \(CloudTestEnv.s3)
                batch_endpoint: \(server.endpoint)
                poll_interval: 0.3s
                manifest_grace: 5s
              az:
                type: azure-batch
                account_url: \(az.batchURL)
                pool_id: repro-pool
                storage_account: reprostore
                container: \(container)
                blob_endpoint: \(az.blobURL)
                poll_interval: 0.3s
                manifest_grace: 5s
            """)
        repo.write(".repro.yaml", (repo.read(".repro.yaml") ?? "").replacingOccurrences(of: "REPLACE_BUCKET", with: bucket))
        // In-process runs (the lost-task test) would otherwise hand the nodes this test binary.
        try FileManager.default.createDirectory(atPath: repo.path + "/.repro", withIntermediateDirectories: true)
        repo.write(".repro/config.yaml", "slurm:\n  repro_path: \(TestPaths.repro)\n")
        repo.write("ok.yaml", """
            name: ok
            command: [sh, -c, "echo to-stdout; echo to-stderr >&2; printf '%s' \\"$REPRO_SEED\\" > $REPRO_OUTDIR/seed.txt"]
            code: [ok.yaml]
            seed: 7
            """)
        repo.write("exit3.yaml", "name: exit3\ncommand: [sh, -c, 'echo before-failing >&2; exit 3']\ncode: [exit3.yaml]\n")
        repo.write("slow.yaml", "name: slow\ncommand: [sleep, '60']\ncode: [slow.yaml]\ntimeout: 2s\n")
        repo.write("long.yaml", "name: long\ncommand: [sleep, '120']\ncode: [long.yaml]\n")
        repo.commitAll("specs")
        return (repo, env.merging(AzureBatchContractTests.env) { $1 })
    }

    func show(_ repo: TempRepo, _ run: String, _ env: [String: String]) -> JSONValue {
        parseJSON(repro(["show", run, "--json"], cwd: repo.path, env: env).out)
    }

    func testSuccessExitCodesAndFailureAreTheSameEverywhere() throws {
        let (repo, env) = try setUpRepo()
        var hashes: [String] = []
        for b in ConformanceTests.backends {
            let ok = repro(["run", "ok.yaml", "--backend", b, "--no-cache", "--json"], cwd: repo.path, env: env)
            XCTAssertEqual(ok.code, 0, "\(b): \(ok.err)")
            let r = parseJSON(ok.out)
            XCTAssertEqual(r["status"], "succeeded", b)
            XCTAssertEqual(r["exit_code"], .int(0), b)
            XCTAssertEqual(r["backend"]?.stringValue, b)
            hashes.append(r["outputs"]?.arrayValue?.first?["sha256"]?.stringValue ?? "none")
            let logs = repro(["logs", r["run_id"]?.stringValue ?? ""], cwd: repo.path, env: env)
            let errLogs = repro(["logs", "--stderr", r["run_id"]?.stringValue ?? ""], cwd: repo.path, env: env)
            XCTAssertEqual(logs.out, "to-stdout\n", b)
            XCTAssertEqual(errLogs.out, "to-stderr\n", b)

            let bad = repro(["run", "exit3.yaml", "--backend", b, "--no-cache", "--json"], cwd: repo.path, env: env)
            XCTAssertEqual(bad.code, 1, "\(b): \(bad.err)")
            let f = parseJSON(bad.out)
            XCTAssertEqual(f["status"], "failed", b)
            XCTAssertEqual(f["exit_code"], .int(3), "\(b): the raw wait status is decoded")
            XCTAssertTrue(f["message"]?.stringValue?.contains("exited with code 3") ?? false, "\(b): \(f["message"] ?? .null)")
            XCTAssertTrue(bad.err.contains("before-failing"), "\(b): the stderr tail is shown: \(bad.err)")
        }
        XCTAssertEqual(Set(hashes).count, 1, "the same output on every backend: \(hashes)")
    }

    func testTimeoutIsEnforcedEverywhere() throws {
        let (repo, env) = try setUpRepo()
        for b in ConformanceTests.backends {
            let r = repro(["run", "slow.yaml", "--backend", b, "--json"], cwd: repo.path, env: env)
            XCTAssertEqual(r.code, 1, "\(b): \(r.err)")
            let j = parseJSON(r.out)
            XCTAssertEqual(j["status"], "failed", b)
            XCTAssertTrue(j["message"]?.stringValue?.contains("timed out after 2s") ?? false, "\(b): \(j["message"] ?? .null)")
            // Stopped at the limit: the recorded run time, not this machine's wall clock.
            let ran = j["duration_s"]?.numberValue ?? .infinity
            XCTAssertGreaterThanOrEqual(ran, 2, b)
            XCTAssertLessThan(ran, 30, "\(b): the task ran on past its timeout")
        }
    }

    func testCancelStopsTheTaskAndRecordsItInterrupted() throws {
        let (repo, env) = try setUpRepo()
        for b in ConformanceTests.backends {
            let log = NSTemporaryDirectory() + "cancel-\(b)-" + UUID().uuidString
            defer { unlink(log) }
            let p = try launchRepro(["run", "long.yaml", "--backend", b, "--no-cache"], cwd: repo.path, env: env, stderrFile: log)
            // Started (or, on a scheduler, submitted and running) before the interrupt.
            let deadline = Date().addingTimeInterval(30)
            var started = false
            while Date() < deadline {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                let running = sh(["sqlite3", repo.path + "/.repro/store.sqlite", "SELECT count(*) FROM runs WHERE name='long' AND status='running'"], cwd: "/")
                if running.out.hasPrefix("1") && (b == "local" || text.contains("RUNNING")) {
                    started = true
                    break
                }
                usleep(100_000)
            }
            // Interrupting a run that never started would test something else: say so.
            XCTAssertTrue(started, "\(b): the run was not running within 30 s: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            kill(p.processIdentifier, SIGINT)
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 130, "\(b): \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            let status = sh(["sqlite3", repo.path + "/.repro/store.sqlite", "SELECT status || '|' || COALESCE(job_id, '') FROM runs WHERE name='long' ORDER BY started_at DESC LIMIT 1"], cwd: "/")
                .out.trimmingCharacters(in: .whitespacesAndNewlines)
            XCTAssertTrue(status.hasPrefix("interrupted|"), "\(b): \(status)")
            let job = String(status.split(separator: "|").last ?? "")
            if b == "az" {
                let terminated = azure?.get("requests").contains {
                    $0["path"]?.stringValue == "/batch/jobs/\(job.split(separator: "/").first ?? "")/terminate" && $0["method"]?.stringValue == "POST"
                }
                XCTAssertEqual(terminated, true, "az job \(job)")
            } else if b == "aws" {
                // Batch was told to terminate the job.
                let terminated = batch?.requests().contains {
                    $0["action"]?.stringValue == "terminatejob" && $0["body"]?["jobId"]?.stringValue == job
                }
                XCTAssertEqual(terminated, true, "aws job \(job)")
            } else if b == "local" {
                // The simulation's whole process group is gone: no process still carries the run's id.
                let runId = sh(["sqlite3", repo.path + "/.repro/store.sqlite", "SELECT run_id FROM runs WHERE name='long' ORDER BY started_at DESC LIMIT 1"], cwd: "/")
                    .out.trimmingCharacters(in: .whitespacesAndNewlines)
                XCTAssertFalse(runId.isEmpty)
                XCTAssertEqual(ConformanceTests.processes(carrying: "REPRO_RUN_ID=" + runId), [], "local: the simulation outlived the interrupt")
            } else {
                // The scheduler really stopped it.
                var state = ""
                for _ in 0..<50 {
                    state = sh(["squeue", "-h", "--states=all", "-j", job, "-o", "%T"], cwd: "/").out.trimmingCharacters(in: .whitespacesAndNewlines)
                    if state == "CANCELLED" { break }
                    usleep(100_000)
                }
                XCTAssertEqual(state, "CANCELLED", "\(b) job \(job)")
            }
        }
    }

    /// Pids of live processes whose environment holds `entry` (read from /proc).
    static func processes(carrying entry: String) -> [Int32] {
        let me = getpid()
        return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { name -> Int32? in
            guard let pid = Int32(name), pid != me, let env = FileManager.default.contents(atPath: "/proc/\(name)/environ") else { return nil }
            // A zombie has no environment left: it is gone for this purpose.
            return env.split(separator: 0).contains { $0.elementsEqual(entry.utf8) } ? pid : nil
        }
    }

    func testALostTaskIsSubmittedAgainAsANewAttempt() throws {
        let (repo, env) = try setUpRepo()
        for b in ["slurm", "cloud", "aws", "az"] {
            var e = ProcessInfo.processInfo.environment
            for (k, v) in env { e[k] = v }
            e.removeValue(forKey: "REPRO_STORE")
            var req = RunRequest(specPath: repo.path + "/ok.yaml", environment: e)
            req.noCache = true
            let runner = Runner(req)
            let p = try runner.prepare()
            // The first attempt of every task is reported lost (NODE_FAIL) once it ends.
            let backend = ScriptedBackend(
                try Backends.make(b, store: p.store, repoRoot: p.repo.workdir, jobs: 1, environment: e, config: p.config), fates: [.lost("NODE_FAIL")])
            let (task, record) = try Runner.makeTask(p, specPath: req.specPath, environment: e, backend: backend, runId: HostInfo.newRunId(), patchBlob: nil)
            try p.store.insertRunning(record)
            let d = try runner.dispatcher(p, backend: backend)
            let handles = try d.submit([task], resources: [:], records: [record])
            var finished: [Dispatcher.Finished] = []
            try d.drive(handles, onFinished: { finished.append($0) })
            XCTAssertEqual(backend.played.map(\.runId), [task.runId], b)
            XCTAssertEqual(finished.count, 1, "\(b): ingested exactly once")
            let stored = try XCTUnwrap(try p.store.run(id: task.runId))
            XCTAssertEqual(stored.status, .succeeded, "\(b): \(stored.message ?? "")")
            XCTAssertEqual(stored.resubmissions, 1, b)
            XCTAssertEqual(stored.outputs.count, 1, b)
        }
    }

    func testTwoWaitersIngestAFinishedTaskExactlyOnce() throws {
        let (repo, env) = try setUpRepo()
        for b in ["slurm", "cloud", "aws", "az"] {
            let submit = repro(["run", "ok.yaml", "--backend", b, "--no-cache", "--detach", "--json"], cwd: repo.path, env: env)
            XCTAssertEqual(submit.code, 0, "\(b): \(submit.err)")
            let runId = parseJSON(submit.out)["run_id"]?.stringValue ?? ""
            if b == "slurm" {
                // Detached, the miss line says where it is, not "ran in -".
                let text = repro(["run", "ok.yaml", "--backend", b, "--no-cache", "--detach"], cwd: repo.path, env: env)
                XCTAssertTrue(text.out.contains("cache miss: submitted as job "), text.out)
                XCTAssertTrue(text.out.contains("still running; `repro wait "), text.out)
                XCTAssertFalse(text.out.contains("ran in -"), text.out)
                let other = text.out.split(separator: " ").first { $0.hasPrefix("20") && $0.count > 20 }.map { $0.replacingOccurrences(of: "`", with: "") } ?? ""
                let waited = repro(["wait", other], cwd: repo.path, env: env)
                XCTAssertEqual(waited.code, 0, other + " " + waited.err + text.out)
            }
            let a = try launchRepro(["wait", runId], cwd: repo.path, env: env)
            let c = try launchRepro(["wait", runId], cwd: repo.path, env: env)
            a.waitUntilExit()
            c.waitUntilExit()
            XCTAssertEqual(a.terminationStatus, 0, b)
            XCTAssertEqual(c.terminationStatus, 0, b)
            let r = show(repo, runId, env)
            XCTAssertEqual(r["status"], "succeeded", b)
            let rows = sh(["sqlite3", repo.path + "/.repro/store.sqlite", "SELECT count(*) FROM outputs WHERE run_id = '\(runId)'"], cwd: "/")
            XCTAssertEqual(rows.out.trimmingCharacters(in: .whitespacesAndNewlines), "1", b)
        }
    }
}
