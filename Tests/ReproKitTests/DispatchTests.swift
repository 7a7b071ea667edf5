import Foundation
import XCTest

@testable import ReproKit
@testable import ReproSupport

/// Hybrid dispatch: estimates, routing bands, budgets, recorded costs, fallback and the burst
/// split, through the CLI on real repositories (and the real SLURM test cluster where a
/// cluster is the point).
final class DispatchTests: XCTestCase {
    static let orchestration = """
        orchestration:
          cloud: slurm
          retries: 1
          retry_delay: 0.1s
        prices:
          local: {watts: 100, per_kwh: 0.36}
          slurm: {per_core_hour: 0.05}

        """

    /// A repo whose spec has `estimate:` over its params, and the orchestration above.
    func repo(estimate: String = "params.n * 0.5 * len(params.pathways)", extra: String = "") throws -> TempRepo {
        let repo = try TempRepo.seeded(spec: """
            name: seeded
            command: [sim/seeded.sh, "{params.n}"]
            code: [sim/]
            outputs: [result.json]
            params: {n: 10, pathways: [a, b, c]}
            seed: 42
            estimate: {seconds: "\(estimate)", scale: params.n}

            """)
        repo.write(".repro.yaml", DispatchTests.orchestration + extra)
        repo.commitAll("orchestration")
        return repo
    }

    func plan(_ repo: TempRepo, _ args: [String] = []) -> JSONValue {
        let r = repro(["plan", "sim.yaml", "--json"] + args, cwd: repo.path)
        XCTAssertEqual(r.code, 0, r.err)
        return parseJSON(r.out)
    }

    /// Parametric first (no history), then history (same config), then history scaled by the
    /// declared size param, and the default when there is neither.
    func testEachEstimateTierAnswers() throws {
        let repo = try repo()
        let p = plan(repo)
        XCTAssertEqual(p["estimate_tier"]?.stringValue, "parametric")
        XCTAssertEqual(p["estimate_s"]?.numberValue, 15)  // 10 * 0.5 * 3
        XCTAssertNotNil(p["backend"]?.stringValue)
        XCTAssertNotNil(p["reason"]?.stringValue)
        XCTAssertNotEqual(p["cost_estimate"], .null)
        // History of the same config: the recorded duration, not the formula.
        XCTAssertEqual(repro(["run", "sim.yaml"], cwd: repo.path).code, 0)
        let ran = parseJSON(repro(["show", "--json", parseJSON(repro(["log", "--json"], cwd: repo.path).out).arrayValue?.first?["run_id"]?.stringValue ?? ""], cwd: repo.path).out)
        let h = plan(repo)
        XCTAssertEqual(h["estimate_tier"]?.stringValue, "history")
        XCTAssertEqual(h["estimate_s"]?.numberValue ?? -1, ran["duration_s"]?.numberValue ?? -2, accuracy: 1e-9)
        XCTAssertEqual(h["cache"]?.stringValue, "hit")
        // Another size: the history per unit of params.n, times the new n.
        let scaled = plan(repo, ["--set", "params.n=40"])
        XCTAssertEqual(scaled["estimate_tier"]?.stringValue, "history")
        XCTAssertEqual(scaled["estimate_s"]?.numberValue ?? -1, (ran["duration_s"]?.numberValue ?? 0) * 4, accuracy: 1e-6)
        // No formula and no history: the configured default.
        let bare = try TempRepo.seeded()
        bare.write(".repro.yaml", "orchestration: {default_estimate: 7m}\n")
        bare.commitAll("default")
        let d = plan(bare)
        XCTAssertEqual(d["estimate_tier"]?.stringValue, "default")
        XCTAssertEqual(d["estimate_s"]?.numberValue, 420)
        XCTAssertEqual(d["backend"]?.stringValue, "local")
    }

    func testABadEstimateNamesTheParamOrTokenAndColumn() throws {
        let repo = try repo()
        let unknown = repro(["plan", "sim.yaml", "--set", "estimate.seconds=params.n * params.cells"], cwd: repo.path)
        XCTAssertEqual(unknown.code, 2)
        XCTAssertTrue(unknown.err.contains("unknown param 'params.cells' at column 12"), unknown.err)
        let token = repro(["plan", "sim.yaml", "--set", "estimate.seconds=params.n ^ 2"], cwd: repo.path)
        XCTAssertEqual(token.code, 2)
        XCTAssertTrue(token.err.contains("unexpected '^' at column 10"), token.err)
        let code = repro(["plan", "sim.yaml", "--set", "estimate.seconds=__import__('os')"], cwd: repo.path)
        XCTAssertEqual(code.code, 2)
        XCTAssertTrue(code.err.contains("unknown name '__import__'"), code.err)
        let list = repro(["plan", "sim.yaml", "--set", "estimate.seconds=params.pathways * 2"], cwd: repo.path)
        XCTAssertTrue(list.err.contains("use len(params.pathways)"), list.err)
    }

    /// Under local_below: local. Over cloud_above: orchestration.cloud. In between: a prompt on a
    /// terminal, else ask_default, said so. --backend overrides all of them.
    func testRoutingBandsAndOverride() throws {
        let repo = try repo()
        XCTAssertEqual(plan(repo)["backend"]?.stringValue, "local")
        let long = plan(repo, ["--set", "estimate.seconds=11 * 3600"])
        XCTAssertEqual(long["backend"]?.stringValue, "slurm")
        XCTAssertTrue(long["reason"]?.stringValue?.contains("over cloud_above 10h") == true, "\(long)")
        let middle = plan(repo, ["--set", "estimate.seconds=3 * 3600"])
        XCTAssertEqual(middle["backend"]?.stringValue, "local")
        XCTAssertEqual(middle["chosen_by"]?.stringValue, "ask_default")
        XCTAssertTrue(middle["reason"]?.stringValue?.contains("no terminal to ask on") == true, "\(middle)")
        let forced = plan(repo, ["--set", "estimate.seconds=11 * 3600", "--backend", "local"])
        XCTAssertEqual(forced["backend"]?.stringValue, "local")
        XCTAssertEqual(forced["chosen_by"]?.stringValue, "option")
        // Without a terminal a run takes ask_default and says so; the record keeps why.
        let run = repro(["run", "sim.yaml", "--set", "estimate.seconds=3 * 3600", "--json"], cwd: repo.path)
        XCTAssertEqual(run.code, 0, run.err)
        XCTAssertTrue(run.err.contains("no terminal to ask on"), run.err)
        XCTAssertEqual(parseJSON(run.out)["routing"]?["by"]?.stringValue, "ask_default")
        // ask_default: cloud, as the plan shows (a fresh repository: no history to answer first).
        let other = try self.repo(extra: "")
        other.write(".repro.yaml", DispatchTests.orchestration.replacingOccurrences(of: "  cloud: slurm\n", with: "  cloud: slurm\n  ask_default: cloud\n"))
        XCTAssertEqual(plan(other, ["--set", "estimate.seconds=3 * 3600"])["backend"]?.stringValue, "slurm")
    }

    /// The 1-10 h band at a terminal: the question is asked on the pseudo-terminal and the
    /// answer decides.
    func testThePromptThroughAPseudoTerminal() throws {
        let repo = try repo()
        let driver = """
            import os, pty, sys, select
            pid, fd = pty.fork()
            if pid == 0:
                os.execv(sys.argv[1], sys.argv[1:])
            out = b""
            answered = False
            while True:
                try:
                    r, _, _ = select.select([fd], [], [], 30)
                except OSError:
                    break
                if not r:
                    break
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
                if not answered and b"(default local)" in out:
                    os.write(fd, b"local\\n")
                    answered = True
            _, status = os.waitpid(pid, 0)
            sys.stdout.write(out.decode(errors="replace"))
            sys.exit(os.waitstatus_to_exitcode(status))
            """
        let script = repo.path + "/../pty-\(UUID().uuidString.prefix(6)).py"
        try driver.write(toFile: script, atomically: true, encoding: .utf8)
        defer { unlink(script) }
        let r = sh(["python3", script, TestPaths.repro, "run", "sim.yaml", "--set", "estimate.seconds=2 * 3600", "--json"], cwd: repo.path)
        XCTAssertEqual(r.code, 0, r.out + r.err)
        XCTAssertTrue(r.out.contains("Run it locally or on slurm? [local/slurm] (default local)"), r.out)
        let runs = parseJSON(repro(["log", "--json"], cwd: repo.path).out).arrayValue ?? []
        let shown = parseJSON(repro(["show", "--json", runs.first?["run_id"]?.stringValue ?? ""], cwd: repo.path).out)
        XCTAssertEqual(shown["routing"]?["by"]?.stringValue, "prompt")
        XCTAssertTrue(shown["routing"]?["reason"]?.stringValue?.contains("you chose local") == true, "\(shown)")
        XCTAssertEqual(shown["backend"]?.stringValue, "local")
    }

    /// A dispatch over budget is refused before anything is recorded or submitted, with the
    /// figures; --over-budget lets it through; recorded costs sum in `repro cost`.
    func testBudgetRefusalAndRecordedCosts() throws {
        let repo = try repo()
        repo.write(".repro.yaml", DispatchTests.orchestration.replacingOccurrences(of: "  retry_delay: 0.1s\n", with: "  retry_delay: 0.1s\n  budget: {per_run: 0.5, per_month: 100}\n"))
        repo.commitAll("budget")
        // 11 h on slurm at 0.05 per core-hour, 4 cores: 2.20, over per_run 0.50.
        let r = repro(["run", "sim.yaml", "--set", "estimate.seconds=11 * 3600", "--set", "resources.cpus=4"], cwd: repo.path)
        XCTAssertEqual(r.code, 2, r.err)
        XCTAssertTrue(r.err.contains("over budget: this run is estimated at 2.20 USD, over orchestration.budget.per_run 0.5 USD (set at \(repo.path)/.repro.yaml:"), r.err)
        XCTAssertTrue(r.err.contains("nothing was submitted"), r.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: repo.path + "/.repro/store.sqlite")
            && sh(["sqlite3", repo.path + "/.repro/store.sqlite", "SELECT count(*) FROM runs"], cwd: "/").out.trimmingCharacters(in: .whitespacesAndNewlines) != "0",
            "a refused run must not be recorded")
        // Local runs cost electricity: recorded per run and summed.
        for n in [1, 2, 3] { XCTAssertEqual(repro(["run", "sim.yaml", "--set", "params.n=\(n)"], cwd: repo.path).code, 0) }
        let runs = parseJSON(repro(["log", "--json"], cwd: repo.path).out).arrayValue ?? []
        XCTAssertEqual(runs.count, 3)
        let sum = runs.compactMap { $0["cost"]?.numberValue }.reduce(0, +)
        XCTAssertEqual(runs.compactMap { $0["cost"]?.numberValue }.count, 3)
        let cost = parseJSON(repro(["cost", "--json", "--since", "1d"], cwd: repo.path).out)
        XCTAssertEqual(cost["total"]?.numberValue ?? -1, sum, accuracy: 1e-12)
        XCTAssertEqual(cost["groups"]?.arrayValue?.first?["backend"]?.stringValue, "local")
        XCTAssertEqual(cost["groups"]?.arrayValue?.first?["runs"]?.intValue, 3)
        let byName = parseJSON(repro(["cost", "--json", "--by", "name"], cwd: repo.path).out)
        XCTAssertEqual(byName["groups"]?.arrayValue?.first?["name"]?.stringValue, "seeded")
        // The month's budget counts what was spent: a month limit of 0 refuses the next priced run.
        repo.write(".repro.yaml", DispatchTests.orchestration.replacingOccurrences(of: "  retry_delay: 0.1s\n", with: "  retry_delay: 0.1s\n  budget: {per_month: 0}\n"))
        let month = repro(["run", "sim.yaml", "--set", "params.n=4"], cwd: repo.path)
        XCTAssertEqual(month.code, 2, month.err)
        XCTAssertTrue(month.err.contains("spent this month"), month.err)
        XCTAssertEqual(repro(["run", "sim.yaml", "--set", "params.n=4", "--over-budget"], cwd: repo.path).code, 0)
    }

    /// A sweep of 200 points with backend: auto: the local pool keeps what it finishes within
    /// burst_after, the rest goes to the SLURM cluster as an array; --dry-run shows the split
    /// first, and --json says where each point ran.
    func testSweepBurstsToTheClusterByTheBurstRule() throws {
        try requireSlurmCluster()
        let repo = try TempRepo.seeded(spec: """
            name: seeded
            command: [sim/seeded.sh, "{params.n}"]
            code: [sim/]
            outputs: [result.json]
            params: {n: 0}
            seed: 42
            estimate: {seconds: "60"}

            """)
        let shared = NSTemporaryDirectory() + "burst-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: shared) }
        repo.write(".repro.yaml", """
            orchestration:
              cloud: slurm
              burst_after: 1h
            slurm:
              workdir: \(shared)
              repro_path: \(TestPaths.repro)
              poll_interval: 0.5s
            prices:
              local: {watts: 65, per_kwh: 0.30}
              slurm: {per_core_hour: 0.05}

            """)
        repo.write("sweep.yaml", "base: sim.yaml\ngrid:\n  params.n: [\((1...200).map(String.init).joined(separator: ", "))]\n")
        repo.commitAll("burst")
        // 60 s each on a pool of 2 within 1 h: 120 points stay local, 80 burst.
        let dry = repro(["sweep", "sweep.yaml", "--jobs", "2", "--dry-run", "--json"], cwd: repo.path)
        XCTAssertEqual(dry.code, 0, dry.err)
        let plan = parseJSON(dry.out)["plan"] ?? .null
        let parts = plan["parts"]?.arrayValue ?? []
        XCTAssertEqual(parts.count, 2, dry.out)
        XCTAssertEqual(parts.first { $0["backend"]?.stringValue == "local" }?["points"]?.intValue, 120)
        XCTAssertEqual(parts.first { $0["backend"]?.stringValue == "slurm" }?["points"]?.intValue, 80)
        XCTAssertEqual(parts.first { $0["backend"]?.stringValue == "local" }?["estimate_wall_s"]?.numberValue, 3600)
        XCTAssertNotEqual(plan["cost_estimate"], .null)
        let text = repro(["sweep", "sweep.yaml", "--jobs", "2", "--dry-run"], cwd: repo.path)
        XCTAssertTrue(text.out.contains("local: 120 point(s)"), text.out)
        XCTAssertTrue(text.out.contains("slurm: 80 point(s)"), text.out)
        XCTAssertFalse(FileManager.default.fileExists(atPath: repo.path + "/results"), "a dry run runs nothing")

        let run = repro(["sweep", "sweep.yaml", "--jobs", "2", "--json"], cwd: repo.path)
        XCTAssertEqual(run.code, 0, run.err)
        let points = parseJSON(run.out)["runs"]?.arrayValue ?? []
        XCTAssertEqual(points.count, 200)
        XCTAssertEqual(points.filter { $0["backend"]?.stringValue == "local" && $0["status"]?.stringValue == "succeeded" }.count, 120)
        XCTAssertEqual(points.filter { $0["backend"]?.stringValue == "slurm" && $0["status"]?.stringValue == "succeeded" }.count, 80)
        XCTAssertTrue(points.filter { $0["backend"]?.stringValue == "slurm" }.allSatisfy { $0["job_id"]?.stringValue != nil })
        XCTAssertTrue(run.err.contains("burst: 120 point(s) on local, 80 point(s) on slurm"), run.err)
        // Both backends' runs are priced and summed.
        let cost = parseJSON(repro(["cost", "--json"], cwd: repo.path).out)
        XCTAssertEqual(Set((cost["groups"]?.arrayValue ?? []).compactMap { $0["backend"]?.stringValue }), ["local", "slurm"])
    }

    /// The cloud backend cannot be reached: the sweep's burst degrades to local, and says so.
    func testSweepDegradesToLocalWhenTheCloudCannotBeReached() throws {
        try TeamCacheTests.requireS3()
        let repo = try TempRepo.seeded(spec: """
            name: seeded
            command: [sim/seeded.sh, "{params.n}"]
            code: [sim/]
            outputs: [result.json]
            params: {n: 0}
            seed: 42
            estimate: {seconds: "3600"}

            """)
        repo.write(".repro.yaml", """
            orchestration: {cloud: hpc, burst_after: 1h}
            backends:
              hpc: {type: slurm-rest, url: "http://127.0.0.1:9", user: nobody, token_env: NO_TOKEN, staging: "s3://nowhere-bucket/x", endpoint: "http://127.0.0.1:9"}

            """)
        repo.write("sweep.yaml", "base: sim.yaml\ngrid:\n  params.n: [1, 2, 3, 4, 5]\n")
        repo.commitAll("unreachable cloud")
        let r = repro(["sweep", "sweep.yaml", "--jobs", "1", "--json"], cwd: repo.path, env: CloudTestEnv.creds.merging(["NO_TOKEN": "x"]) { $1 })
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.err.contains("WARNING: hpc cannot be reached"), r.err)
        XCTAssertTrue(r.err.contains("run on the local pool instead"), r.err)
        let points = parseJSON(r.out)["runs"]?.arrayValue ?? []
        XCTAssertEqual(points.filter { $0["backend"]?.stringValue == "local" && $0["status"]?.stringValue == "succeeded" }.count, 5)
    }

    /// slurmrestd stops while a run is on the cluster: the job is neither cancelled nor run
    /// again locally, however short its estimate. Past orchestration.outage_limit the command
    /// stops waiting (exit 6, the run still recorded as running); once slurmrestd is back,
    /// `repro wait` collects the cluster's result.
    func testRESTEndpointStoppedMidRunNeverCancelsOrFallsBack() throws {
        try CloudTestEnv.require()
        let repo = try TempRepo()
        chmod(repo.path, 0o700)
        // Slow only on the cluster (jobs run as the test user reprotest), so the outage is
        // noticed while the job runs there.
        repo.write("sim.sh", """
            #!/bin/sh
            set -eu
            if [ "$(id -un)" = reprotest ]; then sleep 15; fi
            printf '{"n": %s}\\n' "$1" > "$REPRO_OUTDIR/result.json"

            """, executable: true)
        repo.write("sim.yaml", """
            name: outage
            command: [sh, sim.sh, "{params.n}"]
            code: [sim.sh]
            outputs: [result.json]
            params: {n: 60}
            seed: 1
            estimate: {seconds: "params.n"}

            """)
        let (_, env0) = try CloudTestEnv.addCloudBackend(to: repo, extraConfig: """
            orchestration: {cloud: cloud, retries: 0, outage_limit: 4s}
            prices:
              cloud: {per_core_hour: 0.10}
              local: {watts: 65, per_kwh: 0.30}
            """)
        repo.commitAll("outage")
        var env = env0
        env["REPRO_REST_UNREACHABLE_LIMIT"] = "2"
        let errLog = NSTemporaryDirectory() + "outage-" + UUID().uuidString + ".err"
        defer { unlink(errLog) }
        // 60 s estimated: short enough that the old rule fell back to local.
        let run = try launchRepro(["run", "sim.yaml", "--backend", "cloud"], cwd: repo.path, env: env, stderrFile: errLog)
        let deadline = Date().addingTimeInterval(90)
        func said() -> String { (try? String(contentsOfFile: errLog, encoding: .utf8)) ?? "" }
        while Date() < deadline, !said().contains("RUNNING") { usleep(100_000) }
        XCTAssertTrue(said().contains("RUNNING"), "the job did not start on the cluster: \(said())")
        let restart = CloudTestEnv.stopSlurmrestd()
        var restarted = false
        defer {
            if !restarted { restart() }
            _ = sh(["scancel", "-u", "reprotest"], cwd: "/")
        }
        run.waitUntilExit()
        let err = said()
        XCTAssertEqual(run.terminationStatus, 6, err)
        XCTAssertFalse(err.contains("falling back"), err)
        XCTAssertTrue(err.contains("outage_limit") && err.contains("stays recorded as running") && err.contains("repro wait"), err)
        let runs = parseJSON(repro(["log", "--json"], cwd: repo.path, env: env).out).arrayValue ?? []
        XCTAssertEqual(runs.map { $0["status"]?.stringValue ?? "" }, ["running"], "\(runs)")
        let runId = try XCTUnwrap(runs.first?["run_id"]?.stringValue)
        // The job was not cancelled: once slurmrestd answers, its result is collected.
        restart()
        restarted = true
        let w = repro(["wait", runId], cwd: repo.path, env: env)
        XCTAssertEqual(w.code, 0, w.err)
        let shown = parseJSON(repro(["show", runId, "--json"], cwd: repo.path, env: env).out)
        XCTAssertEqual(shown["status"]?.stringValue, "succeeded", "\(shown)")
        XCTAssertEqual(shown["backend"]?.stringValue, "cloud")
        XCTAssertEqual(shown["fallback"], .null)
        XCTAssertEqual(shown["attempts"]?.arrayValue?.map { $0["outcome"]?.stringValue ?? "" }, ["succeeded"], "no backend failure listed for a job that finished")
    }
}

