import Foundation
import XCTest

@testable import ReproExecution
@testable import ReproKit
@testable import ReproSupport

/// What a managed cluster's nodes need and say, on the real test cluster (slurmrestd, jobs as
/// `reprotest`): `setup:` lines, a worker that cannot start on the node's OS (the loader's own
/// message comes back through the job's comment), and the node probe.
final class ManagedSlurmTests: XCTestCase {
    /// A program that the dynamic loader refuses, as a repro built for a newer glibc is refused
    /// on an older node: it needs a shared library that is not there.
    func unloadableBinary() throws -> String {
        let dir = NSTemporaryDirectory() + "repro-noload-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        chmod(dir, 0o755)
        try "int missing(void);\nint main(void) { return missing(); }\n".write(toFile: dir + "/main.c", atomically: true, encoding: .utf8)
        try "int missing(void) { return 0; }\n".write(toFile: dir + "/lib.c", atomically: true, encoding: .utf8)
        let lib = sh(["gcc", "-shared", "-fPIC", "-o", dir + "/libreprogone.so", dir + "/lib.c"], cwd: dir)
        XCTAssertEqual(lib.code, 0, "gcc is needed for this test: " + lib.err)
        let exe = sh(["gcc", "-o", dir + "/repro", dir + "/main.c", "-L" + dir, "-lreprogone"], cwd: dir)
        XCTAssertEqual(exe.code, 0, exe.err)
        unlink(dir + "/libreprogone.so")
        chmod(dir + "/repro", 0o755)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir + "/repro"
    }

    func cloudRepo(extraConfig: String = "", reproPath: String = TestPaths.repro) throws -> (TempRepo, [String: String]) {
        try CloudTestEnv.require()
        let repo = try TempRepo()
        chmod(repo.path, 0o700)
        try repo.writeDNARepair(population: 40)
        let (_, env) = try CloudTestEnv.addCloudBackend(to: repo, extraConfig: extraConfig, reproPath: reproPath)
        repo.commitAll("cloud setup")
        return (repo, env)
    }

    func testAWorkerThatCannotStartFailsAtOnceWithTheLoadersMessage() throws {
        // A long grace: the failure must come from the job's comment, not from waiting it out.
        let (repo, env) = try cloudRepo(extraConfig: "    manifest_grace: 10m", reproPath: try unloadableBinary())
        let r = repro(["run", "sim.yaml", "--backend", "cloud", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(r.code, 1, r.out + r.err)
        let run = parseJSON(r.out)
        XCTAssertEqual(run["status"]?.stringValue, "failed")
        let message = run["message"]?.stringValue ?? ""
        XCTAssertTrue(message.contains("the worker did not start on"), message)
        XCTAssertTrue(message.contains("libreprogone.so") && message.contains("cannot open shared object file"), message)
        XCTAssertTrue(message.contains("repro on the nodes"), message)
    }

    func testASetupLineThatFailsIsNamedAndTheOthersRunFirst() throws {
        let (repo, env) = try cloudRepo(extraConfig: """
                setup:
                  - export REPRO_SETUP_SEEN=1
                  - test -n "$REPRO_SETUP_SEEN" && test -d /no/such/module/tree
            """)
        let r = repro(["run", "sim.yaml", "--backend", "cloud", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(r.code, 1, r.out + r.err)
        let message = parseJSON(r.out)["message"]?.stringValue ?? ""
        XCTAssertTrue(message.contains("setup line 2 failed (exit 1)"), message)
        XCTAssertTrue(message.contains("/no/such/module/tree"), message)
    }

    func testSetupLinesRunBeforeAWorkerThatSucceeds() throws {
        let (repo, env) = try cloudRepo(extraConfig: """
                setup: ["umask 022", "export PATH=\\"$PATH:/opt/none\\""]
            """)
        let r = repro(["run", "sim.yaml", "--backend", "cloud", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(r.code, 0, r.out + r.err)
        XCTAssertEqual(parseJSON(r.out)["status"]?.stringValue, "succeeded")
    }

    func testTheProbeReportsTheNodeAndWhetherReproStarts() throws {
        let (repo, env) = try cloudRepo()
        let good = repro(["backends", "--probe", "cloud", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(good.code, 0, good.out + good.err)
        let report = parseJSON(good.out)
        let libc = sh(["getconf", "GNU_LIBC_VERSION"], cwd: "/").out.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(report["libc"]?.stringValue, libc, good.out)
        XCTAssertEqual(report["arch"]?.stringValue, sh(["uname", "-m"], cwd: "/").out.trimmingCharacters(in: .whitespacesAndNewlines))
        XCTAssertTrue(report["os"]?.stringValue?.contains("Debian") == true, good.out)
        XCTAssertEqual(report["repro_starts"], .bool(true))
        XCTAssertTrue(report["repro_output"]?.stringValue?.contains(HostInfo.reproVersion) == true, good.out)

        let (bad, badEnv) = try cloudRepo(reproPath: try unloadableBinary())
        let r = repro(["backends", "--probe", "cloud"], cwd: bad.path, env: badEnv)
        XCTAssertEqual(r.code, 6, r.out + r.err)
        XCTAssertTrue(r.out.contains("DOES NOT START") && r.out.contains("cannot open shared object file"), r.out)
        XCTAssertTrue(r.out.contains("libc    " + libc), r.out)
    }

    /// A worker that stops (SIGSTOP: as a lost node looks from outside) while SLURM still says
    /// RUNNING: its heartbeat goes silent, the job is cancelled and the task submitted again as
    /// a new attempt, which succeeds; the record says so.
    func testATaskWhoseHeartbeatStopsIsCancelledAndSubmittedAgain() throws {
        let (repo, env) = try cloudRepo(extraConfig: """
                heartbeat_interval: 0.5s
                heartbeat_limit: 3s
                max_retries: 1
            """)
        repo.write("slow.yaml", """
            name: slow
            command: [sh, -c, "sleep 4 && echo ok > \\"$REPRO_OUTDIR/ok.txt\\""]
            seed: 1
            outputs: [ok.txt]
            """)
        repo.commitAll("slow")
        let out = NSTemporaryDirectory() + "heartbeat-" + UUID().uuidString
        defer { unlink(out + ".json"); unlink(out + ".err") }
        let p = try launchRepro(["run", "slow.yaml", "--backend", "cloud", "--json"], cwd: repo.path, env: env, stderrFile: out + ".err", stdoutFile: out + ".json")
        // The worker of the first attempt, once it runs the simulation.
        var worker = ""
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, p.isRunning, worker.isEmpty {
            worker = sh(["pgrep", "-u", "reprotest", "-f", "exec-task"], cwd: "/").out.split(separator: "\n").first.map(String.init) ?? ""
            usleep(100_000)
        }
        XCTAssertFalse(worker.isEmpty, "no worker appeared: " + ((try? String(contentsOfFile: out + ".err", encoding: .utf8)) ?? ""))
        usleep(1_000_000)  // a first heartbeat is up
        XCTAssertEqual(sh(["kill", "-STOP", worker], cwd: "/").code, 0)
        p.waitUntilExit()
        let err = (try? String(contentsOfFile: out + ".err", encoding: .utf8)) ?? ""
        XCTAssertEqual(p.terminationStatus, 0, err)
        XCTAssertTrue(err.contains("no heartbeat for"), err)
        let run = parseJSON((try? String(contentsOfFile: out + ".json", encoding: .utf8)) ?? "")
        XCTAssertEqual(run["status"]?.stringValue, "succeeded", err)
        XCTAssertEqual(run["resubmissions"]?.intValue, 1, err)
        // The stopped worker's job was cancelled: SLURM killed it.
        let gone = Date().addingTimeInterval(20)
        while Date() < gone, kill(pid_t(worker) ?? 0, 0) == 0 { usleep(200_000) }
        XCTAssertNotEqual(kill(pid_t(worker) ?? 0, 0), 0, "the silent worker \(worker) is still there")
    }

    /// Arrays hold at most max_array_size tasks; a sweep bigger than that is several arrays,
    /// and Ctrl-C would cancel each array with one request.
    func testASweepIsSplitIntoArraysOfMaxArraySize() throws {
        let (repo, env) = try cloudRepo(extraConfig: "    max_array_size: 2")
        repo.write("sweep.yaml", "base: sim.yaml\ngrid:\n  params.dose_gy: [0.5, 1.0, 1.5, 2.0, 2.5]\nbackend: cloud\n")
        repo.commitAll("sweep")
        let r = repro(["sweep", "sweep.yaml"], cwd: repo.path, env: env)
        XCTAssertEqual(r.code, 0, r.err)
        let jobs = sh(["sqlite3", repo.path + "/.repro/store.sqlite", "SELECT job_id FROM runs WHERE status = 'succeeded'"], cwd: "/").out
            .split(separator: "\n").map { String($0.split(separator: "_").first ?? "") }
        XCTAssertEqual(jobs.count, 5, r.err)
        XCTAssertEqual(Set(jobs).count, 3, "arrays of 2, 2 and 1: \(jobs)")
    }

    /// Setup lines are checked where they are written; from a committed file they wait for trust.
    func testSetupLinesAreSingleLinesAndACommittedOneWaitsForTrust() throws {
        let repo = try TempRepo.seeded()
        repo.write(".repro.yaml", """
            backends:
              hpc:
                type: slurm-rest
                url: http://127.0.0.1:6820
                user: me
                token_env: SLURM_JWT
                staging: s3://repro-bucket/p
                setup:
                  - "module load python\\nrm -rf ~"
            """)
        let r = repro(["backends"], cwd: repo.path)
        XCTAssertEqual(r.code, 2, r.out + r.err)
        XCTAssertTrue(r.err.contains(".repro.yaml:9") && r.err.contains("backends.hpc.setup"), r.err)
        XCTAssertTrue(r.err.contains("one line per item"), r.err)

        let node = try SpecNode.parse("""
            backends:
              hpc:
                setup: ["module load a", "module load b"]
                token_command: make-token
            """, file: ".repro.yaml")
        let found = ProjectSecrets.find(in: node, notIn: nil).map { $0.path + "=" + $0.value }
        XCTAssertEqual(found.sorted(), ["backends.hpc.setup=[module load a\nmodule load b]", "backends.hpc.token_command=make-token"])
    }

    func testTheJobScriptQuotesWhatItQuotes() throws {
        let script = try SlurmRestBackend.script(reproPath: "/opt/it's/repro", setup: ["module load x"])
        XCTAssertTrue(script.contains("module load x || repro_cannot_start \"setup line 1 failed (exit $?): \"'module load x'"), script)
        XCTAssertTrue(script.contains("exec '/opt/it'\\''s/repro' exec-task\n"), script)
        XCTAssertThrowsError(try SlurmRestBackend.script(reproPath: "/opt/repro", setup: ["a\nb"]))
        let comment = "repro-probe: os=Rocky Linux 8.9 (Green Obsidian)|libc=glibc 2.28|arch=aarch64|starts=no|out=version `GLIBC_2.35' not found"
        let report = try XCTUnwrap(NodeReport.parse(comment: comment, node: "compute-1"))
        XCTAssertEqual(report.libc, "glibc 2.28")
        XCTAssertEqual(report.arch, "aarch64")
        XCTAssertFalse(report.reproStarts)
        XCTAssertTrue(report.reproOutput.contains("GLIBC_2.35"))
        XCTAssertNil(NodeReport.parse(comment: "something else", node: "n"))
    }
}
