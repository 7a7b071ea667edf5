import Foundation
import XCTest

@testable import ReproExecution
@testable import ReproKit
@testable import ReproSupport
@testable import ReproStore

/// The SLURM backend: state parsing on canned output, then for real against the single-node
/// test cluster (scripts/slurm-test-cluster.sh). Without a cluster these skip with the reason;
/// with REPRO_REQUIRE_TEST_ENV=1 (CI) a missing cluster is a failure.
final class SlurmTests: XCTestCase {
    func testStateTableAndParsers() {
        XCTAssertEqual(SlurmStates.phase("PENDING").0, .queued)
        XCTAssertEqual(SlurmStates.phase("RUNNING").0, .running)
        XCTAssertEqual(SlurmStates.phase("COMPLETED").1, .succeeded)
        XCTAssertEqual(SlurmStates.phase("FAILED").1, .failed)
        XCTAssertEqual(SlurmStates.phase("TIMEOUT").1, .failed)
        XCTAssertTrue(SlurmStates.phase("TIMEOUT").2?.contains("time limit") ?? false)
        XCTAssertEqual(SlurmStates.phase("OUT_OF_MEMORY").1, .failed)
        XCTAssertEqual(SlurmStates.phase("CANCELLED by 0").1, .interrupted)
        XCTAssertEqual(SlurmStates.phase("NODE_FAIL").0, .retry)
        XCTAssertEqual(SlurmStates.phase("PREEMPTED").0, .retry)
        XCTAssertEqual(SlurmStates.parseSubmitted("1234\n"), "1234")
        XCTAssertEqual(SlurmStates.parseSubmitted("1234;cluster\n"), "1234")
        XCTAssertNil(SlurmStates.parseSubmitted("sbatch: error: x\n"))
        XCTAssertEqual(
            SlurmStates.parseSqueue("12_0|COMPLETED|None|vm\n12_1|PENDING|Resources|\n"),
            [.init(jobId: "12_0", state: "COMPLETED", reason: "None", node: "vm"), .init(jobId: "12_1", state: "PENDING", reason: "Resources", node: "")])
        let sc = SlurmStates.parseScontrol(
            "JobId=40 ArrayJobId=39 ArrayTaskId=1 JobName=x JobState=FAILED Reason=NonZeroExitCode ExitCode=3:0 NodeList=vm\n")
        XCTAssertEqual(sc.first?.jobId, "39_1")
        XCTAssertEqual(sc.first?.state, "FAILED")
        XCTAssertEqual(sc.first?.exitCode, 3)
        XCTAssertEqual(sc.first?.node, "vm")
        XCTAssertEqual(try SlurmBackend.options(resources: ["cpus": 4, "memory": "8G", "time": "2h", "partition": "p"], timeout: nil),
            ["--cpus-per-task=4", "--mem=8G", "--partition=p", "--time=120"])
        XCTAssertEqual(try SlurmBackend.options(resources: [:], timeout: 90), ["--time=3"])
    }

    func runJSON(_ repo: TempRepo, _ args: [String], env: [String: String] = [:]) -> (Int32, JSONValue, String) {
        let r = repro(args + ["--json"], cwd: repo.path, env: env)
        return (r.code, parseJSON(r.out), r.err)
    }

    func testSingleRunOnSlurmMatchesLocalAndRecordsJobAndNode() throws {
        try requireSlurmCluster()
        let repo = try TempRepo.seeded()
        let (code, slurm, err) = runJSON(repo, ["run", "sim.yaml", "--backend", "slurm"])
        XCTAssertEqual(code, 0, err)
        XCTAssertEqual(slurm["backend"], "slurm")
        XCTAssertEqual(slurm["status"], "succeeded")
        XCTAssertNotEqual(slurm["job_id"], .null)
        XCTAssertEqual(slurm["host"]?.stringValue, sh(["hostname"], cwd: "/").out.trimmingCharacters(in: .whitespacesAndNewlines))
        XCTAssertTrue(err.contains("COMPLETED"), err)
        let (_, local, _) = runJSON(repo, ["run", "sim.yaml", "--backend", "local", "--no-cache"])
        XCTAssertEqual(local["key"], slurm["key"])
        XCTAssertEqual(local["outputs"]?.arrayValue?.map { $0["sha256"] }, slurm["outputs"]?.arrayValue?.map { $0["sha256"] })
        let show = parseJSON(repro(["show", slurm["run_id"]?.stringValue ?? "", "--json"], cwd: repo.path).out)
        XCTAssertEqual(show["job_id"], slurm["job_id"])
        XCTAssertEqual(show["backend"], "slurm")
    }

    func testFailingSimulationKeepsItsExitCodeOnSlurm() throws {
        try requireSlurmCluster()
        let repo = try TempRepo()
        repo.addFixture("fail.sh", as: "fail.sh")
        repo.write("sim.yaml", "name: failing\ncommand: ./fail.sh\ncode: [fail.sh]\nseed: 1\nbackend: slurm\n")
        repo.commitAll()
        let (code, j, err) = runJSON(repo, ["run", "sim.yaml"])
        XCTAssertEqual(code, 1, err)
        XCTAssertEqual(j["status"], "failed")
        XCTAssertEqual(j["exit_code"], .int(3))
        XCTAssertTrue(err.contains("FAILED"), err)
    }

    func testArrayOf50TasksDetachWaitAndCancel() throws {
        try requireSlurmCluster()
        let repo = try TempRepo.seeded()
        repo.write("sweep.yaml", "base: sim.yaml\ngrid: {params.n: [\((0..<50).map(String.init).joined(separator: ", "))]}\n")
        repo.commitAll("sweep")
        let (code, j, err) = runJSON(repo, ["sweep", "sweep.yaml", "--backend", "slurm"])
        XCTAssertEqual(code, 0, err)
        XCTAssertEqual(j["succeeded"], .int(50))
        let jobs = Set((j["runs"]?.arrayValue ?? []).compactMap { $0["job_id"]?.stringValue?.split(separator: "_").first.map(String.init) })
        XCTAssertEqual(jobs.count, 1, "50 points went as one job array: \(jobs)")

        // --detach returns at once; wait picks the run up and ingests it once.
        let (dcode, detached, derr) = runJSON(repo, ["run", "sim.yaml", "--set", "params.n=500", "--backend", "slurm", "--detach"])
        XCTAssertEqual(dcode, 0, derr)
        XCTAssertEqual(detached["status"], "running")
        let id = detached["run_id"]?.stringValue ?? ""
        let waited = repro(["wait", id, "--json"], cwd: repo.path)
        XCTAssertEqual(waited.code, 0, waited.err)
        XCTAssertEqual(parseJSON(waited.out)["status"], "succeeded")
        XCTAssertEqual(repro(["wait", id], cwd: repo.path).code, 0, "a second wait finds it done")

        // A cancelled job: recorded interrupted with SLURM's reason.
        repo.addFixture("slow.sh", as: "slow.sh")
        repo.write("slow.yaml", "name: slow\ncommand: [./slow.sh, '120']\ncode: [slow.sh]\nbackend: slurm\n")
        repo.commitAll("slow")
        let (_, slow, serr) = runJSON(repo, ["run", "slow.yaml", "--detach"])
        let job = slow["job_id"]?.stringValue ?? ""
        XCTAssertFalse(job.isEmpty, serr)
        // Cancelled once it runs (not while pending, which SLURM reports differently).
        let running = Date().addingTimeInterval(30)
        while Date() < running, sh(["squeue", "-h", "-j", job, "-o", "%T"], cwd: "/").out.trimmingCharacters(in: .whitespacesAndNewlines) != "RUNNING" {
            usleep(100_000)
        }
        XCTAssertEqual(sh(["scancel", job], cwd: "/").code, 0)
        let w = repro(["wait", slow["run_id"]?.stringValue ?? "", "--json"], cwd: repo.path)
        XCTAssertEqual(w.code, 130, w.err)
        XCTAssertEqual(parseJSON(w.out)["status"], "interrupted")
        XCTAssertTrue(parseJSON(w.out)["message"]?.stringValue?.contains("CANCELLED") ?? false, w.out)
    }

    func testGridSweepOnSlurmInterruptedResumedAndFailing() throws {
        try requireSlurmCluster()
        let repo = try TempRepo.seeded(
            spec: TempRepo.defaultSpec.replacingOccurrences(of: "[COUNTER_FILE]", with: "[COUNTER_FILE, SIM_SLEEP]"))
        repo.write("sweep.yaml", "base: sim.yaml\ngrid: {params.n: [\((0..<100).map(String.init).joined(separator: ", "))], seed: [1, 2]}\n")
        repo.write("failing.yaml", "base: sim.yaml\ngrid: {params.n: [1, 2, fail-x, 4]}\n")
        repo.commitAll("sweeps")
        let counter = repo.path + "/.git/counter"
        let p = try launchRepro(
            ["sweep", "sweep.yaml", "--backend", "slurm"], cwd: repo.path, env: ["COUNTER_FILE": counter, "SIM_SLEEP": "0.5"])
        let deadline = Date().addingTimeInterval(60)
        while lineCount(counter) < 20 && Date() < deadline { usleep(100_000) }
        kill(p.processIdentifier, SIGINT)  // no TTY: the submitted jobs are cancelled
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 130)
        let store = try Store(root: repo.path + "/.repro")
        XCTAssertEqual(try store.runs(inStatus: .running).count, 0)
        let before = try store.runs(inStatus: .succeeded).count
        XCTAssertGreaterThan(before, 0)
        XCTAssertLessThan(before, 200)

        let resume = runJSON(repo, ["sweep", "sweep.yaml", "--backend", "slurm"], env: ["COUNTER_FILE": counter])
        XCTAssertEqual(resume.0, 0, resume.2)
        XCTAssertEqual(resume.1["hits"], .int(Int64(before)))
        XCTAssertEqual(resume.1["succeeded"], .int(Int64(200 - before)))
        let succeeded = try store.runs(inStatus: .succeeded)
        XCTAssertEqual(succeeded.count, 200, "none lost")
        XCTAssertEqual(Set(succeeded.map(\.key)).count, 200, "no point run twice")

        let rerun = runJSON(repo, ["sweep", "sweep.yaml", "--backend", "slurm"])
        XCTAssertEqual(rerun.1["hits"], .int(200))

        let failing = runJSON(repo, ["sweep", "failing.yaml", "--backend", "slurm"])
        XCTAssertEqual(failing.0, 1)
        XCTAssertEqual(failing.1["failed"], .int(1))
        XCTAssertEqual((failing.1["succeeded"]?.intValue ?? 0) + (failing.1["hits"]?.intValue ?? 0), 3)
    }

    func testJobOverItsTimeLimitIsTimeout() throws {
        try requireSlurmCluster()
        let repo = try TempRepo()
        repo.addFixture("slow.sh", as: "slow.sh")
        repo.write("sim.yaml", "name: over\ncommand: [./slow.sh, '300']\ncode: [slow.sh]\nresources: {time: 1}\nbackend: slurm\n")
        repo.commitAll()
        let (code, j, err) = runJSON(repo, ["run", "sim.yaml"])
        XCTAssertEqual(code, 1, err)
        XCTAssertEqual(j["status"], "failed")
        XCTAssertTrue(j["message"]?.stringValue?.contains("TIMEOUT") ?? false, "\(j["message"] ?? .null) \(err)")
    }

    /// A resource value with a newline once ran its second line on the node. Now it is refused
    /// before anything is recorded or submitted, from the spec, --set and sweep axes alike.
    func testResourceValuesCannotInjectCommands() throws {
        try requireSlurmCluster()
        let marker = "/tmp/repro-injected-\(UUID().uuidString.prefix(8))"
        defer { unlink(marker) }
        let repo = try TempRepo.seeded()
        repo.write("evil.yaml", TempRepo.defaultSpec + "backend: slurm\nresources: {partition: \"debug\\ntouch \(marker)\"}\n")
        repo.write("sweep.yaml", "base: sim.yaml\ngrid: {resources.partition: [\"debug\\ntouch \(marker)\"]}\n")
        repo.commitAll("evil")
        let jobsBefore = sh(["squeue", "-h", "--states=all", "-o", "%i"], cwd: "/").out
        for args in [["run", "evil.yaml"], ["run", "sim.yaml", "--backend", "slurm", "--set", "resources.partition=debug\ntouch \(marker)"],
            ["run", "sim.yaml", "--backend", "slurm", "--set", "resources.qos=normal;touch \(marker)"], ["sweep", "sweep.yaml", "--backend", "slurm"]]
        {
            let r = repro(args, cwd: repo.path)
            XCTAssertEqual(r.code, 2, "\(args): \(r.err)")
            XCTAssertTrue(r.err.contains("not a valid SLURM value"), r.err)
        }
        XCTAssertEqual(sh(["squeue", "-h", "--states=all", "-o", "%i"], cwd: "/").out, jobsBefore, "nothing was submitted")
        XCTAssertEqual(try Store(root: repo.path + "/.repro").recentRuns(limit: 10).count, 0, "nothing was recorded")
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker))
        XCTAssertThrowsError(try SlurmBackend.options(resources: ["account": "a b"], timeout: nil))
        XCTAssertThrowsError(try SlurmBackend.options(resources: ["memory": "8G'"], timeout: nil))
        XCTAssertEqual(try SlurmBackend.options(resources: ["gpus": "a100:2", "time": "1-00:00:00"], timeout: nil),
            ["--gpus=a100:2", "--time=1-00:00:00"])
    }

    /// The caller's environment stays on the submitting machine: the job sees only what the
    /// task needs, passthrough values travel in a 0600 file that ingestion removes, and the
    /// record keeps a keyed hash of them.
    func testSecretsStayOffTheClusterAndOutOfTheRecord() throws {
        try requireSlurmCluster()
        let repo = try TempRepo()
        let secret = "AKIA-SECRET-\(UUID().uuidString)"
        let token = "token-\(UUID().uuidString)"
        repo.write(
            "sim.sh",
            """
            #!/bin/sh
            # The job's own environment (exec-task's) and the task files, as the node sees them.
            tr '\\0' '\\n' < /proc/$PPID/environ > "$REPRO_OUTDIR/job-env.txt"
            cat "$REPRO_CONFIG" > "$REPRO_OUTDIR/config.txt"
            dir=$(dirname "$REPRO_CONFIG")
            cat "$dir/task.json" > "$REPRO_OUTDIR/task.txt"
            stat -c %a "$dir/secrets.json" > "$REPRO_OUTDIR/secrets-mode.txt"
            echo "token=$MY_TOKEN" > "$REPRO_OUTDIR/token.txt"

            """, executable: true)
        repo.write("sim.yaml", "name: secrets\ncommand: [./sim.sh]\ncode: [sim.sh]\nenv_passthrough: [MY_TOKEN]\nbackend: slurm\n")
        repo.commitAll()
        let (code, j, err) = runJSON(repo, ["run", "sim.yaml"], env: ["AWS_SECRET_ACCESS_KEY": secret, "MY_TOKEN": token])
        XCTAssertEqual(code, 0, err)
        let dir = j["outputs_dir"]?.stringValue ?? ""
        func read(_ name: String) -> String { (try? String(contentsOfFile: dir + "/" + name, encoding: .utf8)) ?? "(missing \(name))" }
        XCTAssertFalse(read("job-env.txt").contains(secret), "the caller's secret reached the job's environment")
        XCTAssertFalse(read("job-env.txt").contains("AWS_SECRET_ACCESS_KEY"))
        XCTAssertFalse(read("task.txt").contains(token), "a passthrough value was written into task.json")
        XCTAssertTrue(read("task.txt").contains("MY_TOKEN"), "task.json names the passthrough variable")
        XCTAssertEqual(read("secrets-mode.txt"), "600\n")
        XCTAssertEqual(read("token.txt"), "token=\(token)\n", "the simulation still got the passthrough value")
        // After ingestion no task file with the value is left on the shared folder.
        let leftovers = sh(["grep", "-rl", token, repo.path + "/.repro/slurm"], cwd: "/")
        XCTAssertEqual(leftovers.out, "", "left on the shared folder: \(leftovers.out)")
        // The record: a keyed hash, and the store dump has neither value.
        let recorded = j["env"]?["MY_TOKEN"]?.stringValue ?? ""
        XCTAssertTrue(recorded.hasPrefix("hmac-sha256:"), recorded)
        XCTAssertFalse(recorded.contains(String(Hashing.sha256Hex(token).prefix(16))))
        let dump = sh(["sqlite3", repo.path + "/.repro/store.sqlite", ".dump"], cwd: "/").out
        XCTAssertFalse(dump.contains(token) || dump.contains(secret))
        XCTAssertFalse(dump.contains(String(Hashing.sha256Hex(token).prefix(16))), "an unkeyed hash of the value is in the store")
    }

    /// Ctrl-C during a blocking `repro run --backend slurm`: without a terminal the job is
    /// cancelled and the run recorded interrupted; on a terminal repro asks, and "n" leaves the
    /// job running for `repro wait`.
    func testCtrlCDuringABlockingSlurmRunCancelsOrAsks() throws {
        try requireSlurmCluster()
        let repo = try TempRepo()
        repo.addFixture("slow.sh", as: "slow.sh")
        repo.write("slow.yaml", "name: slow\ncommand: [./slow.sh, '120']\ncode: [slow.sh]\nbackend: slurm\n")
        repo.commitAll()
        let store = try Store(root: repo.path + "/.repro")
        func waitForJob() -> RunRecord? {
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                if let r = try? store.runs(inStatus: .running).first, r.jobId != nil {
                    let q = sh(["squeue", "-h", "-j", r.jobId ?? "", "-o", "%T"], cwd: "/").out
                    if q.contains("RUNNING") { return r }
                }
                usleep(200_000)
            }
            return nil
        }
        // No terminal: cancel.
        let errFile = repo.path + "/../ctrlc-\(UUID().uuidString.prefix(6)).err"
        let p = try launchRepro(["run", "slow.yaml"], cwd: repo.path, stderrFile: errFile)
        let running = try XCTUnwrap(waitForJob(), "the job never ran")
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        let err = (try? String(contentsOfFile: errFile, encoding: .utf8)) ?? ""
        XCTAssertEqual(p.terminationStatus, 130, err)
        XCTAssertTrue(err.contains("cancelling 1 submitted task"), err)
        XCTAssertEqual(try store.run(id: running.runId)?.status, .interrupted)
        let state = sh(["scontrol", "-o", "show", "job", running.jobId ?? ""], cwd: "/").out
        XCTAssertTrue(state.contains("JobState=CANCELLED") || state.isEmpty, state)

        // A terminal: repro asks; "n" leaves the job running.
        let driver = """
            import os, pty, signal, sys, time, select
            repro, cwd = sys.argv[1], sys.argv[2]
            pid, fd = pty.fork()
            if pid == 0:
                os.chdir(cwd)
                os.execv(repro, [repro, "run", "slow.yaml", "--set", "params.x=2"])
            out = b""
            def until(pat, secs):
                global out
                end = time.time() + secs
                while pat not in out and time.time() < end:
                    r, _, _ = select.select([fd], [], [], 0.2)
                    if r:
                        try: out += os.read(fd, 4096)
                        except OSError: return
            until(b"RUNNING", 60)
            os.kill(pid, signal.SIGINT)
            until(b"[Y/n]", 20)
            os.write(fd, b"n\\n")
            until(b"repro wait", 20)
            _, status = os.waitpid(pid, 0)
            sys.stdout.write(out.decode(errors="replace"))
            print("\\nEXIT", os.waitstatus_to_exitcode(status))
            """
        let py = repo.path + "/../pty-driver-\(UUID().uuidString.prefix(6)).py"
        try driver.write(toFile: py, atomically: true, encoding: .utf8)
        let r = sh(["python3", py, TestPaths.repro, repo.path], cwd: repo.path)
        XCTAssertTrue(r.out.contains("cancel 1 slurm job(s)? [Y/n]"), "exit \(r.code)\n" + r.out + "\n---\n" + r.err)
        // (What repro prints after the answer is lost when the terminal closes: judge by effect.)
        XCTAssertTrue(r.out.contains("EXIT 130"), r.out)
        let left = try XCTUnwrap(try store.runs(inStatus: .running).first, "the run is still recorded running")
        XCTAssertEqual(sh(["squeue", "-h", "-j", left.jobId ?? "", "-o", "%T"], cwd: "/").out.trimmingCharacters(in: .whitespacesAndNewlines), "RUNNING")
        _ = sh(["scancel", left.jobId ?? ""], cwd: "/")
        let w = repro(["wait", left.runId], cwd: repo.path)
        XCTAssertEqual(w.code, 130, w.err)
        XCTAssertEqual(try store.run(id: left.runId)?.status, .interrupted)
    }
}
