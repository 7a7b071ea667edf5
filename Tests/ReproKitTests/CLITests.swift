import Foundation
import XCTest

@testable import ReproKit
@testable import ReproSupport
@testable import ReproStore

/// The `repro` binary as a user runs it: exit codes, messages, --json, and a store that bad
/// input never damages.
final class CLITests: XCTestCase {
    func testRunJSONHasTheDocumentedFields() throws {
        let repo = try TempRepo.seeded()
        let miss = repro(["run", "sim.yaml", "--json"], cwd: repo.path)
        XCTAssertEqual(miss.code, 0, miss.err)
        let j = parseJSON(miss.out)
        for field in ["run_id", "key", "config_hash", "cache", "status", "exit_code", "commit", "dirty", "seed", "solver",
            "backend", "duration_s", "outputs"]
        {
            XCTAssertNotNil(j[field], "missing \(field) in \(miss.out)")
        }
        XCTAssertEqual(j["cache"], "miss")
        XCTAssertEqual(j["status"], "succeeded")
        XCTAssertEqual(j["exit_code"], .int(0))
        XCTAssertEqual(j["dirty"], .bool(false))
        XCTAssertEqual(j["seed"], .int(42))
        XCTAssertEqual(j["backend"], "local")
        XCTAssertEqual(j["solver"]?["rtol"], .double(1e-6))
        let first = j["outputs"]?.arrayValue?.first
        XCTAssertEqual(first?["name"], "result.json")
        XCTAssertEqual(first?["sha256"]?.stringValue?.count, 64)
        XCTAssertNotNil(first?["size"]?.intValue)
        XCTAssertTrue(FileManager.default.fileExists(atPath: first?["path"]?.stringValue ?? "/nonexistent"))

        let hit = repro(["run", "sim.yaml", "--json"], cwd: repo.path)
        XCTAssertEqual(hit.code, 0, hit.err)
        let h = parseJSON(hit.out)
        XCTAssertEqual(h["cache"], "hit")
        XCTAssertEqual(h["key"], j["key"])
        XCTAssertEqual(h["run_id"], j["run_id"])

        // Human output names the hit and where it came from.
        let text = repro(["run", "sim.yaml"], cwd: repo.path)
        XCTAssertTrue(text.out.contains("cache hit: served from run \(j["run_id"]?.stringValue ?? "")"), text.out)

        // log and show find it by id prefix.
        let log = repro(["log", "--json"], cwd: repo.path)
        XCTAssertEqual(log.code, 0, log.err)
        XCTAssertEqual(parseJSON(log.out).arrayValue?.first?["hits"], .int(2))
        let id = j["run_id"]?.stringValue ?? ""
        let show = repro(["show", String(id.prefix(18)), "--json"], cwd: repo.path)
        XCTAssertEqual(show.code, 0, show.err)
        XCTAssertEqual(parseJSON(show.out)["run_id"], .string(id))
        XCTAssertEqual(repro(["show", "nosuchrun"], cwd: repo.path).code, 5, "an unknown run id is not a failed simulation")
    }

    /// A plain `repro run SPEC` skips ArgumentParser (the hit path) and says the same as the
    /// parsed command; REPRO_TRACE shows which way it went and the stages.
    func testPlainRunTakesTheShortPathAndSaysTheSame() throws {
        let repo = try TempRepo.seeded()
        XCTAssertEqual(repro(["run", "sim.yaml"], cwd: repo.path).code, 0)
        let plain = repro(["run", "sim.yaml"], cwd: repo.path, env: ["REPRO_TRACE": "1"])
        XCTAssertEqual(plain.code, 0, plain.err)
        XCTAssertTrue(plain.err.contains("arguments parsed (plain run)"), plain.err)
        XCTAssertTrue(plain.err.contains("cache lookup: hit"), plain.err)
        let parsed = repro(["run", "--backend", "local", "sim.yaml"], cwd: repo.path, env: ["REPRO_TRACE": "1"])
        XCTAssertEqual(parsed.code, 0, parsed.err)
        XCTAssertFalse(parsed.err.contains("(plain run)"), parsed.err)
        XCTAssertTrue(parsed.err.contains("arguments parsed"), parsed.err)
        // The same summary either way.
        XCTAssertEqual(plain.out, parsed.out)
        XCTAssertEqual(repro(["--version"], cwd: repo.path).out.trimmingCharacters(in: .whitespacesAndNewlines), HostInfo.reproVersion)
        // Errors are the same too: a missing spec is exit 2 with its message.
        let missing = repro(["run", "nope.yaml"], cwd: repo.path)
        XCTAssertEqual(missing.code, 2)
        XCTAssertTrue(missing.err.contains("nope.yaml"), missing.err)
        XCTAssertEqual(repro(["sweep", "nope.yaml"], cwd: repo.path).code, 2)
        // `sweep FILE --jobs N` too; a --jobs the short path does not take is ArgumentParser's.
        repo.write("sweep.yaml", "base: sim.yaml\ngrid: {params.population_size: [10, 20]}\n")
        let swept = repro(["sweep", "sweep.yaml", "--jobs", "2"], cwd: repo.path, env: ["REPRO_TRACE": "1"])
        XCTAssertEqual(swept.code, 0, swept.err)
        XCTAssertTrue(swept.err.contains("arguments parsed (plain sweep)"), swept.err)
        let again = repro(["sweep", "--jobs", "2", "sweep.yaml"], cwd: repo.path, env: ["REPRO_TRACE": "1"])
        XCTAssertFalse(again.err.contains("(plain sweep)"), again.err)
        XCTAssertTrue(swept.out.hasPrefix("2 points: 0 cache hits, 2 succeeded, 0 failed"), swept.out)
        XCTAssertEqual(
            again.out.replacingOccurrences(of: #" in [0-9.]+s"#, with: "", options: .regularExpression),
            "2 points: 2 cache hits, 0 succeeded, 0 failed\n")
        for bad in ["0", "-1", "two"] {
            let r = repro(["sweep", "sweep.yaml", "--jobs", bad], cwd: repo.path)
            XCTAssertEqual(r.code, 2, "--jobs \(bad): \(r.err)")
            XCTAssertTrue(r.err.contains("jobs"), r.err)
        }
    }

    func testFailingSimulationExits1IsRecordedAndNeverServed() throws {
        let repo = try TempRepo()
        repo.addFixture("fail.sh", as: "fail.sh")
        repo.write("sim.yaml", "name: failing\ncommand: ./fail.sh\ncode: [fail.sh]\nseed: 1\n")
        repo.commitAll()
        let first = repro(["run", "sim.yaml", "--json"], cwd: repo.path)
        XCTAssertEqual(first.code, 1, first.err)
        let j = parseJSON(first.out)
        XCTAssertEqual(j["status"], "failed")
        XCTAssertEqual(j["exit_code"], .int(3))
        XCTAssertTrue(first.err.contains("solver diverged"), "stderr tail is shown: \(first.err)")
        let second = repro(["run", "sim.yaml", "--json"], cwd: repo.path)
        XCTAssertEqual(second.code, 1)
        XCTAssertEqual(parseJSON(second.out)["cache"], "miss")
        let store = try Store(root: repo.path + "/.repro")
        XCTAssertEqual(try store.runs(inStatus: .failed).count, 2)
        // stderr is kept for audit.
        let failed = try store.runs(inStatus: .failed)[0]
        let stderr = String(decoding: try store.readBlob(failed.stderrBlob ?? ""), as: UTF8.self)
        XCTAssertTrue(stderr.contains("solver diverged"))
    }

    func testConfigAndEnvironmentErrorsExit2AndLeaveTheStoreIntact() throws {
        let repo = try TempRepo.seeded()
        XCTAssertEqual(repro(["run", "sim.yaml"], cwd: repo.path).code, 0)
        let storeFile = repo.path + "/.repro/store.sqlite"

        func expect2(_ spec: String, _ needles: [String], file: StaticString = #filePath, line: UInt = #line) {
            repo.write("bad.yaml", spec)
            let r = repro(["run", "bad.yaml"], cwd: repo.path)
            XCTAssertEqual(r.code, 2, r.err, file: file, line: line)
            for n in needles { XCTAssertTrue(r.err.contains(n), "expected '\(n)' in: \(r.err)", file: file, line: line) }
        }
        let base = TempRepo.defaultSpec
        expect2("name: x\ncommand: [a, b\n", ["bad.yaml", "line"])
        expect2(base.replacingOccurrences(of: "rtol: 1e-6", with: "rtol: -1e-6"), ["bad.yaml:8", "solver.rtol", ">= 0"])
        expect2(base + "colour: blue\n", ["bad.yaml:10", "unknown key 'colour'"])
        expect2(base + "seeds: 3\n", ["did you mean 'seed'"])
        expect2(base.replacingOccurrences(of: "command: [sim/seeded.sh, \"{params.n}\"]\n", with: ""), ["missing required key 'command'"])
        expect2(base.replacingOccurrences(of: "seed: 42", with: "seed: -4"), ["seed must be an integer >= 0"])
        expect2(base.replacingOccurrences(of: "atol: 1e-9", with: "atol: .inf"), ["not a finite number"])
        expect2(base.replacingOccurrences(of: "{params.n}", with: "{params.missing}"), ["params.missing"])
        XCTAssertEqual(repro(["run", "sim.yaml", "--set", "nonsense=1"], cwd: repo.path).code, 2)
        XCTAssertEqual(repro(["run", "sim.yaml", "--set", "solver.rtol=-1"], cwd: repo.path).code, 2)
        XCTAssertEqual(repro(["run", "missing.yaml"], cwd: repo.path).code, 2)
        // A bad backend is refused even when the key would be a cache hit.
        XCTAssertEqual(repro(["run", "sim.yaml", "--backend", "mars"], cwd: repo.path).code, 2)

        // Not a git repository.
        let plain = NSTemporaryDirectory() + "repro-nogit-" + UUID().uuidString.prefix(6)
        try FileManager.default.createDirectory(atPath: plain, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: plain) }
        FileManager.default.createFile(atPath: plain + "/sim.yaml", contents: Data(base.utf8))
        let nogit = repro(["run", "sim.yaml"], cwd: plain, env: ["GIT_CEILING_DIRECTORIES": NSTemporaryDirectory()])
        XCTAssertEqual(nogit.code, 2, nogit.err)
        XCTAssertTrue(nogit.err.contains("not inside a git repository"), nogit.err)

        // A repository without a commit.
        let empty = try TempRepo()
        empty.write("sim.yaml", base)
        let r = repro(["run", "sim.yaml"], cwd: empty.path)
        XCTAssertEqual(r.code, 2, r.err)
        XCTAssertTrue(r.err.contains("no commit yet"), r.err)

        // The store still holds the one good run and passes SQLite's integrity check.
        let check = sh(["sqlite3", storeFile, "PRAGMA integrity_check; SELECT count(*) FROM runs;"], cwd: repo.path)
        XCTAssertEqual(check.out, "ok\n1\n", check.err)
    }

    func testResultsViewAnswersTheADRQuery() throws {
        let repo = try TempRepo.seeded()
        XCTAssertEqual(repro(["run", "sim.yaml"], cwd: repo.path).code, 0)
        let r = sh(["sqlite3", "-json", ".repro/store.sqlite", "select * from results"], cwd: repo.path)
        XCTAssertEqual(r.code, 0, r.err)
        let rows = parseJSON(r.out).arrayValue ?? []
        XCTAssertEqual(rows.count, 1)
        let row = rows.first ?? .null
        XCTAssertEqual(
            Set(row.objectValue?.keys.map { $0 } ?? []),
            ["config_hash", "git_commit", "random_seed", "result_json", "computed_at", "execution_time_seconds", "backend"])
        XCTAssertEqual(row["random_seed"], .int(42))
        XCTAssertEqual(row["backend"], "local")
        XCTAssertEqual(parseJSON(row["result_json"]?.stringValue ?? "")["seed"], .int(42))
    }

    func testTimeoutKillsTheProcessGroupAndRecordsFailure() throws {
        let repo = try TempRepo()
        repo.addFixture("slow.sh", as: "slow.sh")
        let pidFile = slowPidFile()
        defer { unlink(pidFile) }
        repo.write("sim.yaml", "name: slow\ncommand: [./slow.sh, '30']\ncode: [slow.sh]\ntimeout: 1s\nenv: {SLOW_PID_FILE: \(pidFile)}\n")
        repo.commitAll()
        let r = repro(["run", "sim.yaml", "--json"], cwd: repo.path)
        XCTAssertEqual(r.code, 1, r.err)
        let j = parseJSON(r.out)
        XCTAssertEqual(j["status"], "failed")
        XCTAssertTrue(j["message"]?.stringValue?.contains("timed out") ?? false, r.out)
        XCTAssertTrue(j["message"]?.stringValue?.contains("after 1s") ?? false, r.out)
        // The sleep child of slow.sh was in the killed group too.
        XCTAssertTrue(pidFileProcessIsGone(pidFile), "the sleep of slow.sh survived")
    }

    func testManyOutputsAndOutputsDefaultToEverything() throws {
        let repo = try TempRepo()
        repo.addFixture("many.sh", as: "many.sh")
        repo.write("sim.yaml", "name: many\ncommand: [./many.sh, '120']\ncode: [many.sh]\n")
        repo.commitAll()
        let r = repro(["run", "sim.yaml", "--json", "--out", "outdir"], cwd: repo.path)
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertEqual(parseJSON(r.out)["outputs"]?.arrayValue?.count, 120)
        XCTAssertEqual(repo.read("outdir/part3/out13.txt"), "file 13 seed \(parseJSON(r.out)["seed"]?.intValue ?? -1)\n")
        // Identical contents are stored once.
        // 120 outputs + stdout and stderr, which are both empty and so one blob.
        XCTAssertEqual(try Store(root: repo.path + "/.repro").blobCount(), 121)
    }

    func testSimulationSeesTheFixedEnvironment() throws {
        let repo = try TempRepo()
        repo.write(
            "env.sh",
            """
            #!/bin/sh
            env | grep -v '^_=' | sort > "$REPRO_OUTDIR/env.txt"
            pwd > "$REPRO_OUTDIR/cwd.txt"
            cp "$REPRO_CONFIG" "$REPRO_OUTDIR/config.json"
            """, executable: true)
        repo.write(
            "sim.yaml",
            """
            name: envcheck
            command: [./env.sh]
            code: [env.sh]
            params: {a: {b: 1.5}}
            seed: 3
            solver: {rtol: 1e-6, atol: 0}
            env: {OMP_NUM_THREADS: 1}
            env_passthrough: [KEEP_ME]
            """)
        repo.commitAll()
        let r = repro(["run", "sim.yaml", "--json"], cwd: repo.path, env: ["KEEP_ME": "yes", "DROP_ME": "no"])
        XCTAssertEqual(r.code, 0, r.err)
        let env = repo.read("results/envcheck/\(parseJSON(r.out)["key"]?.stringValue?.prefix(12) ?? "")/env.txt") ?? ""
        for line in ["LANG=C.UTF-8", "TZ=UTC", "OMP_NUM_THREADS=1", "KEEP_ME=yes", "REPRO_SEED=3", "REPRO_RTOL=0.000001",
            "REPRO_ATOL=0"]
        {
            XCTAssertTrue(env.contains(line + "\n"), "missing \(line) in\n\(env)")
        }
        XCTAssertFalse(env.contains("DROP_ME"))
        let dir = "results/envcheck/\(parseJSON(r.out)["key"]?.stringValue?.prefix(12) ?? "")"
        XCTAssertEqual(repo.read(dir + "/cwd.txt"), repo.path + "\n")
        let cfg = parseJSON(repo.read(dir + "/config.json") ?? "")
        XCTAssertEqual(cfg["params"]?["a"]?["b"], .double(1.5))
        XCTAssertEqual(cfg["seed"], .int(3))
        XCTAssertEqual(cfg["solver"]?["rtol"], .double(1e-6))
    }
}
