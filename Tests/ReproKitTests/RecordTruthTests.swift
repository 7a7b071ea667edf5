import Foundation
import XCTest

@testable import ReproKit
@testable import ReproSupport
@testable import ReproStore

/// A virtualenv made from Debian's python3 (no pip, nothing from the network), with a package
/// of a version the base interpreter does not have: only the venv's own listing can name it.
struct TestVenv {
    let path: String
    var python: String { path + "/bin/python" }

    init(package: String = "fakenumpy", version: String = "1.26.4") throws {
        path = "/tmp/repro-venv-" + UUID().uuidString.prefix(8)
        let made = sh(["/usr/bin/python3", "-m", "venv", "--without-pip", path], cwd: "/")
        guard made.code == 0 else { throw XCTSkip("python3 -m venv is not available here: \(made.err)") }
        let site = sh([path + "/bin/python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd: "/")
            .out.trimmingCharacters(in: .whitespacesAndNewlines)
        let dist = site + "/\(package)-\(version).dist-info"
        try FileManager.default.createDirectory(atPath: dist, withIntermediateDirectories: true)
        FileManager.default.createFile(
            atPath: dist + "/METADATA", contents: Data("Metadata-Version: 2.1\nName: \(package)\nVersion: \(version)\n".utf8))
        // Readable by the cluster's job user.
        _ = sh(["chmod", "-R", "a+rX", path], cwd: "/")
    }

    func remove() { FileIO.removeTree(path) }
}

final class RecordTruthTests: XCTestCase {
    func runJSON(_ repo: TempRepo, _ args: [String], env: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line)
        -> JSONValue
    {
        let r = repro(args + ["--json"], cwd: repo.path, env: env)
        XCTAssertEqual(r.code, 0, r.out + r.err, file: file, line: line)
        return parseJSON(r.out, file: file, line: line)
    }

    /// Run with a venv's python, the record names the venv and ITS packages, not the base
    /// interpreter its `bin/python` links to (which has no such package).
    func testAVenvIsRecordedAsTheEnvironmentThatRan() throws {
        let venv = try TestVenv()
        defer { venv.remove() }
        let repo = try TempRepo()
        repo.write("sim.py", "import os\nopen(os.environ['REPRO_OUTDIR'] + '/o.txt', 'w').write('x')\n")
        repo.write("sim.yaml", "name: venv\ncommand: [\(venv.python), sim.py]\ncode: [sim.py]\noutputs: [o.txt]\n")
        repo.commitAll()
        let a = runJSON(repo, ["run", "sim.yaml"])
        XCTAssertEqual(a["interpreter"]?["path"]?.stringValue, venv.python)
        XCTAssertEqual(a["interpreter"]?["prefix"]?.stringValue, venv.path)
        XCTAssertEqual(a["interpreter"]?["base_prefix"]?.stringValue, "/usr")
        XCTAssertEqual(a["interpreter"]?["environment"]?.stringValue, "venv")
        let store = try Store(root: repo.path + "/.repro")
        let packages = String(decoding: try store.readBlob(a["packages_blob"]?.stringValue ?? ""), as: UTF8.self)
        XCTAssertTrue(packages.contains("fakenumpy==1.26.4\n"), packages)
        let show = repro(["show", a["run_id"]?.stringValue ?? ""], cwd: repo.path)
        XCTAssertTrue(show.out.contains("environment venv \(venv.path) (made from /usr)"), show.out)
    }

    /// A program that is there but not executable is not "not found".
    func testAProgramThatExistsButCannotBeRunIsNamedAsSuch() throws {
        let repo = try TempRepo()
        repo.write("sim.sh", "#!/bin/sh\necho hi\n")
        chmod(repo.path + "/sim.sh", 0o644)
        repo.write("sim.yaml", "name: noexec\ncommand: [./sim.sh]\ncode: [sim.sh]\n")
        repo.commitAll()
        let r = repro(["run", "sim.yaml"], cwd: repo.path)
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.err.contains("exists at \(repo.path)/./sim.sh but user \(HostInfo.user)"), r.err)
        XCTAssertTrue(r.err.contains("may not execute it (mode 644"), r.err)
        XCTAssertFalse(r.err.contains("cannot find"), r.err)
    }

    // MARK: bytecode

    /// Bytecode Python wrote into the work tree (not ignored by git) is not an uncommitted change.
    func testUntrackedBytecodeIsNotADirtyTree() throws {
        let repo = try TempRepo()
        repo.write("sim.py", "import os, mod\nopen(os.environ['REPRO_OUTDIR'] + '/o.txt', 'w').write(str(mod.V))\n")
        repo.write("mod.py", "V = 1\n")
        repo.write("sim.yaml", "name: pyc\ncommand: [python3, sim.py]\ncode: [sim.py, mod.py]\noutputs: [o.txt]\n")
        repo.commitAll()
        XCTAssertEqual(repro(["run", "sim.yaml"], cwd: repo.path).code, 0)
        // What `python3 -c 'import mod'` in the work tree leaves behind.
        XCTAssertEqual(sh(["env", "-u", "PYTHONDONTWRITEBYTECODE", "python3", "-c", "import mod"], cwd: repo.path).code, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: repo.path + "/__pycache__"))
        let second = repro(["run", "sim.yaml", "--json"], cwd: repo.path)
        XCTAssertEqual(second.code, 0, second.out + second.err)
        XCTAssertEqual(parseJSON(second.out)["cache"]?.stringValue, "hit")
        // And the patch of a dirty tree leaves the bytecode out.
        repo.write("mod.py", "V = 2\n")
        let dirty = runJSON(repo, ["run", "sim.yaml", "--allow-dirty"])
        XCTAssertEqual(dirty["dirty_files"], ["mod.py"])
        let store = try Store(root: repo.path + "/.repro")
        let patch = String(decoding: try store.readBlob(dirty["patch_blob"]?.stringValue ?? ""), as: UTF8.self)
        XCTAssertFalse(patch.contains("__pycache__"), patch)
    }

    /// An edit in the same second that keeps the file's size (`V = 1` → `V = 3`) is a new code
    /// identity, and the run computes with the new source: the bytecode a run uses was compiled
    /// from its own identity's source, never an older one with the same mtime and size.
    func testAnEditWithinTheSameSecondNeverRunsTheOldBytecode() throws {
        let repo = try TempRepo()
        repo.write("sim.py", "import os, mod\nopen(os.environ['REPRO_OUTDIR'] + '/o.txt', 'w').write(str(mod.V))\n")
        repo.write("mod.py", "V = 1\n")
        // Python's own cache next to the source would be served; repro must not let it be.
        repo.write(".gitignore", "__pycache__/\n")
        repo.write("sim.yaml", "name: pyc\ncommand: [python3, sim.py]\ncode: [sim.py, mod.py]\noutputs: [o.txt]\n")
        repo.commitAll()
        var st = stat()
        XCTAssertEqual(stat(repo.path + "/mod.py", &st), 0)
        // The user also ran it by hand: a __pycache__ next to the source, matching mtime and size.
        XCTAssertEqual(sh(["env", "-u", "PYTHONDONTWRITEBYTECODE", "python3", "-c", "import mod"], cwd: repo.path).code, 0)
        let first = runJSON(repo, ["run", "sim.yaml"])
        let firstOut = first["outputs"]?.arrayValue?.first?["path"]?.stringValue ?? ""
        XCTAssertEqual(try String(contentsOfFile: firstOut, encoding: .utf8), "1")
        repo.write("mod.py", "V = 3\n")
        // The same second as before (what a fast edit gives); the size did not change.
        var times = [st.st_atim, st.st_mtim]
        XCTAssertEqual(utimensat(AT_FDCWD, repo.path + "/mod.py", &times, 0), 0)
        repo.commitAll("V = 3")
        let second = runJSON(repo, ["run", "sim.yaml"])
        XCTAssertEqual(second["cache"]?.stringValue, "miss")
        XCTAssertNotEqual(second["key"], first["key"])
        let out = second["outputs"]?.arrayValue?.first?["path"]?.stringValue ?? ""
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8), "3", "the old bytecode ran under the new key")
        // Bytecode lives under the store, by code identity.
        let kept = (try? FileManager.default.contentsOfDirectory(atPath: repo.path + "/.repro/pycache")) ?? []
        XCTAssertEqual(kept.count, 2, "one bytecode folder per code identity")
        // The recorded environment does not carry the folder (it follows from the code identity).
        XCTAssertNil(second["env"]?["PYTHONPYCACHEPREFIX"])
        // Uncommitted edits too: each patch is its own identity, its own bytecode.
        for v in ["5", "7"] {
            repo.write("mod.py", "V = \(v)\n")
            XCTAssertEqual(utimensat(AT_FDCWD, repo.path + "/mod.py", &times, 0), 0)
            let dirty = runJSON(repo, ["run", "sim.yaml", "--allow-dirty"])
            let path = dirty["outputs"]?.arrayValue?.first?["path"]?.stringValue ?? ""
            XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), v, "an uncommitted edit ran old bytecode")
        }
    }
}

extension RemoteTests {
    /// One venv, run locally and on the cluster (as `reprotest`, through S3): the two records
    /// name the same environment and packages, and the cloud run's user, PATH and HOME are the
    /// worker's, with the submitter recorded as the submitter.
    func testALocalAndACloudRunOfOneVenvRecordOneEnvironmentAndWhoRanIt() throws {
        let venv = try TestVenv()
        defer { venv.remove() }
        let (repo, _, env) = try cloudRepo()
        repo.write("venv.py", "import os\nopen(os.environ['REPRO_OUTDIR'] + '/o.txt', 'w').write('x')\n")
        repo.write("venv.yaml", "name: venv\ncommand: [\(venv.python), venv.py]\ncode: [venv.py]\noutputs: [o.txt]\n")
        repo.commitAll("venv spec")
        let local = repro(["run", "venv.yaml", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(local.code, 0, local.out + local.err)
        let cloud = repro(["run", "venv.yaml", "--backend", "cloud", "--no-cache", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(cloud.code, 0, cloud.out + cloud.err)
        let a = parseJSON(local.out), b = parseJSON(cloud.out)
        XCTAssertEqual(b["interpreter"]?["path"]?.stringValue, venv.python)
        XCTAssertEqual(b["interpreter"], a["interpreter"])
        let d = repro(["diff", a["run_id"]?.stringValue ?? "", b["run_id"]?.stringValue ?? "", "--json"], cwd: repo.path)
        XCTAssertEqual(d.code, 0, d.err)
        let environmentChanges = (parseJSON(d.out)["identity"]?.arrayValue ?? []).filter { ["interpreter", "package"].contains($0["kind"]?.stringValue ?? "") }
        XCTAssertEqual(environmentChanges, [], d.out)

        // Who ran it: the job user on the node; the submitter as the submitter.
        XCTAssertEqual(a["user"]?.stringValue, HostInfo.user)
        XCTAssertEqual(b["user"]?.stringValue, "reprotest")
        XCTAssertEqual(b["submitter"]?["user"]?.stringValue, HostInfo.user)
        XCTAssertEqual(b["submitter"]?["host"]?.stringValue, HostInfo.hostname)
        XCTAssertNotEqual(b["env"]?["HOME"]?.stringValue, ProcessInfo.processInfo.environment["HOME"], "the submitter's HOME")
        XCTAssertNotNil(b["env"]?["PATH"]?.stringValue)
        let audit = repro(["audit", b["run_id"]?.stringValue ?? ""], cwd: repo.path)
        XCTAssertTrue(audit.out.contains("by reprotest"), audit.out)
        XCTAssertTrue(audit.out.contains("submitted  by \(HostInfo.user) on \(HostInfo.hostname)"), audit.out)
        let prov = repro(["export", b["run_id"]?.stringValue ?? ""], cwd: repo.path)
        XCTAssertTrue(prov.out.contains("user:reprotest"), prov.out)
        XCTAssertTrue(prov.out.contains("actedOnBehalfOf"), prov.out)
    }

    /// A venv the job user cannot reach (made in the submitter's private folder): the failed run
    /// says so, not "cannot find the program on PATH".
    func testAVenvTheJobUserCannotReadIsNamedAsUnreadable() throws {
        let (repo, _, env) = try cloudRepo()
        let made = sh(["/usr/bin/python3", "-m", "venv", "--without-pip", repo.path + "/.venv"], cwd: "/")
        guard made.code == 0 else { throw XCTSkip("python3 -m venv is not available here: \(made.err)") }
        repo.write(".gitignore", ".venv/\n")
        repo.write("venv.py", "print('x')\n")
        repo.write("venv.yaml", "name: venv\ncommand: [\(repo.path)/.venv/bin/python, venv.py]\ncode: [venv.py]\n")
        repo.commitAll("venv spec")
        let cloud = repro(["run", "venv.yaml", "--backend", "cloud", "--json"], cwd: repo.path, env: env)
        XCTAssertNotEqual(cloud.code, 0)
        let all = cloud.out + cloud.err
        XCTAssertTrue(all.contains("is behind a folder user reprotest on"), all)
        XCTAssertFalse(all.contains("cannot find the program"), all)
    }
}

/// `why` and the miss line: compared with the nearest identity, leading with what changed.
final class ExplanationTests: XCTestCase {
    func testWhyAfterACodeCommitComparesWithTheSameConfigAndLeadsWithTheCode() throws {
        let repo = try TempRepo.seeded()
        XCTAssertEqual(repro(["run", "sim.yaml", "--set", "params.n=5"], cwd: repo.path).code, 0)
        XCTAssertEqual(repro(["run", "sim.yaml", "--set", "params.n=7"], cwd: repo.path).code, 0)
        repo.write("sim/helper.txt", "a new file under the code path\n")
        repo.commitAll("code change")
        let why = repro(["why", "sim.yaml", "--set", "params.n=5", "--json"], cwd: repo.path)
        let j = parseJSON(why.out)
        let kinds = j["differences"]?.arrayValue?.compactMap { $0["kind"]?.stringValue } ?? []
        XCTAssertEqual(kinds, ["code"], why.out)
        XCTAssertTrue(j["summary"]?.stringValue?.hasPrefix("miss: sim ") == true, why.out)
        // The miss line of the run says the same.
        let run = repro(["run", "sim.yaml", "--set", "params.n=5"], cwd: repo.path)
        XCTAssertTrue(run.err.contains("miss: sim "), run.err)
        XCTAssertFalse(run.err.contains("params.n 7"), run.err)
    }
}

extension ExplanationTests {
    /// With no `estimate:` at all, a sweep's dry run estimates from the spec's earlier runs
    /// (other configs), not from the 5-minute default.
    func testSweepDryRunEstimatesFromTheSpecsHistory() throws {
        let repo = try TempRepo.seeded()
        repo.write("sweep.yaml", "base: sim.yaml\ngrid:\n  params.n: [\((100...149).map(String.init).joined(separator: ", "))]\n")
        repo.commitAll("sweep")
        for n in 1...5 { XCTAssertEqual(repro(["run", "sim.yaml", "--set", "params.n=\(n)"], cwd: repo.path).code, 0) }
        let dry = repro(["sweep", "sweep.yaml", "--dry-run", "--json"], cwd: repo.path)
        XCTAssertEqual(dry.code, 0, dry.err)
        let plan = parseJSON(dry.out)["plan"] ?? .null
        let wall = plan["parts"]?.arrayValue?.first?["estimate_wall_s"]?.numberValue ?? 0
        XCTAssertGreaterThan(wall, 0)
        XCTAssertLessThan(wall, 60, "50 points of well under a second each, not 50 x 5 minutes: \(dry.out)")
        let one = repro(["plan", "sim.yaml", "--set", "params.n=77"], cwd: repo.path)
        XCTAssertTrue(one.out.contains("median of 5 earlier run(s) of seeded with other configs"), one.out + one.err)
    }
}

extension DispatchTests {
    /// `repro plan` says when `repro run` would refuse for the budget (and fails as it would),
    /// and the refusal names the file that set the limit, here the store's own config.
    func testPlanFlagsABudgetRefusalNamingTheFileThatSetTheLimit() throws {
        let repo = try repo()
        repo.write(".repro/config.yaml", DispatchTests.orchestration.replacingOccurrences(of: "  retry_delay: 0.1s\n", with: "  retry_delay: 0.1s\n  budget: {per_run: 0.00005}\n"))
        let args = ["sim.yaml", "--set", "estimate.seconds=11 * 3600", "--set", "resources.cpus=4"]
        let plan = repro(["plan"] + args, cwd: repo.path)
        XCTAssertEqual(plan.code, 2, plan.out + plan.err)
        XCTAssertTrue(plan.out.contains("REFUSED by `repro run`: over budget"), plan.out)
        XCTAssertTrue(plan.out.contains("per_run 5e-05 USD (set at \(repo.path)/.repro/config.yaml:"), plan.out)
        let run = repro(["run"] + args, cwd: repo.path)
        XCTAssertEqual(run.code, 2, run.err)
        XCTAssertTrue(run.err.contains(".repro/config.yaml:"), run.err)
        XCTAssertFalse(run.err.contains("in .repro.yaml"), run.err)
    }

    /// Runs that ran before their backend had a price are priced with today's table, and
    /// `repro cost` says so.
    func testCostPricesRunsThatRanBeforePricesWereSet() throws {
        let repo = try TempRepo.seeded()
        for n in [1, 2, 3] { XCTAssertEqual(repro(["run", "sim.yaml", "--set", "params.n=\(n)"], cwd: repo.path).code, 0) }
        let before = parseJSON(repro(["cost", "--json"], cwd: repo.path).out)
        XCTAssertEqual(before["groups"]?.arrayValue?.first?["unpriced_runs"]?.intValue, 3)
        repo.write(".repro/config.yaml", "prices:\n  local: {per_core_hour: 36}\n")
        let after = repro(["cost", "--json"], cwd: repo.path)
        let g = parseJSON(after.out)["groups"]?.arrayValue?.first ?? .null
        XCTAssertEqual(g["unpriced_runs"]?.intValue, 0, after.out)
        XCTAssertEqual(g["priced_now_runs"]?.intValue, 3, after.out)
        XCTAssertGreaterThan(g["cost"]?.numberValue ?? 0, 0)
        let text = repro(["cost"], cwd: repo.path)
        XCTAssertTrue(text.out.contains("3 run(s) that ran before their backend had a price"), text.out)
    }
}

/// What a user met on the way: each a test that failed before.
final class SmallThingsTests: XCTestCase {
    /// The spec is checked before the work tree: its error is the one to fix first.
    func testASpecErrorComesBeforeTheDirtyTree() throws {
        let repo = try TempRepo.seeded(spec: "name: n\ncommand: 42\ncode: [sim/]\n")
        repo.write("sim/seeded.sh", "#!/bin/sh\necho changed\n", executable: true)
        let r = repro(["run", "sim.yaml"], cwd: repo.path)
        XCTAssertEqual(r.code, 2)
        XCTAssertTrue(r.err.contains("sim.yaml:2: command is the value 42, not a program to run"), r.err)
        XCTAssertFalse(r.err.contains("uncommitted"), r.err)
    }
}

extension SmallThingsTests {
    /// A program that cannot be started did not "run in 0ms".
    func testAMissThatNeverStartedSaysSo() throws {
        let repo = try TempRepo()
        repo.write("sim.bin", "\u{7F}ELF this is no program\n", executable: true)
        repo.write("sim.yaml", "name: nostart\ncommand: [./sim.bin]\ncode: [sim.bin]\n")
        repo.commitAll()
        let r = repro(["run", "sim.yaml"], cwd: repo.path)
        XCTAssertEqual(r.code, 1, r.out + r.err)
        XCTAssertTrue(r.out.contains("cache miss: the simulation did not start"), r.out)
        XCTAssertFalse(r.out.contains("ran in 0ms"), r.out)
    }

    /// `replicates:` over a base with `seed: 42` says what it does with that seed.
    func testReplicatesOverAnExplicitSeedIsPrinted() throws {
        let repo = try TempRepo.seeded()
        repo.write("sweep.yaml", "base: sim.yaml\ngrid: {params.n: [1]}\nreplicates: 2\n")
        repo.commitAll("sweep")
        let r = repro(["sweep", "sweep.yaml", "--json"], cwd: repo.path)
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.err.contains("replicates: 2: each replicate runs with its own seed"), r.err)
        XCTAssertTrue(r.err.contains("seed: 42 itself is not used as-is"), r.err)
        let seeds = Set((parseJSON(r.out)["runs"]?.arrayValue ?? []).compactMap { $0["seed"]?.intValue })
        XCTAssertFalse(seeds.contains(42))
    }

    /// `repro why SWEEP` explains the sweep's points instead of refusing the sweep file.
    func testWhyAcceptsASweepFile() throws {
        let repo = try TempRepo.seeded()
        repo.write("sweep.yaml", "base: sim.yaml\ngrid: {params.n: [1, 2, 3]}\n")
        repo.commitAll("sweep")
        XCTAssertEqual(repro(["run", "sim.yaml", "--set", "params.n=2"], cwd: repo.path).code, 0)
        let r = repro(["why", "sweep.yaml"], cwd: repo.path)
        XCTAssertEqual(r.code, 1, r.out + r.err)
        XCTAssertTrue(r.out.contains("3 point(s): 1 would hit, 2 would miss"), r.out)
        XCTAssertTrue(r.out.contains("params.n 2 → 1"), r.out)
        XCTAssertFalse(r.err.contains("unknown key"), r.err)
        XCTAssertEqual(repro(["run", "sim.yaml", "--set", "params.n=1"], cwd: repo.path).code, 0)
        XCTAssertEqual(repro(["run", "sim.yaml", "--set", "params.n=3"], cwd: repo.path).code, 0)
        XCTAssertEqual(repro(["why", "sweep.yaml"], cwd: repo.path).code, 0)
    }
}

extension SmallThingsTests {
    /// A failed attestation check over many runs says each reason once, one per line.
    func testAFailedAttestationCheckOverManyRunsIsReadable() throws {
        let repo = try TempRepo.seeded()
        var key = ""
        for _ in 0..<4 { key = parseJSON(repro(["run", "sim.yaml", "--no-cache", "--json"], cwd: repo.path).out)["key"]?.stringValue ?? "" }
        let keys = repo.path + "/.git/keys"
        try FileManager.default.createDirectory(atPath: keys, withIntermediateDirectories: true)
        XCTAssertEqual(repro(["keygen", "--out", keys + "/signer"], cwd: repo.path).code, 0)
        let r = repro(["audit", key, "--verify-attestation", "--pubkey", keys + "/signer.pub"], cwd: repo.path)
        XCTAssertEqual(r.code, 1, r.err)
        XCTAssertTrue(r.err.contains("none of the 4 run(s) behind"), r.err)
        let lines = r.err.split(separator: "\n")
        XCTAssertEqual(lines.filter { $0.hasPrefix("  4 runs (") }.count, 1, r.err)
        XCTAssertLessThanOrEqual(lines.count, 3, r.err)
    }

}

extension TeamCacheTests {
    /// `repro push --set` pushes the run made with that --set; B pulls it with the same --set.
    func testPushAndPullTakeSetAsRunDoes() throws {
        let t = try makeTeam()
        let made = repro(["run", "sim.yaml", "--set", "params.n=5", "--json"], cwd: t.a.path, env: envA(t))
        XCTAssertEqual(made.code, 0, made.err)
        let push = repro(["push", "sim.yaml", "--set", "params.n=5", "--key", t.keys + "/alice", "--json"], cwd: t.a.path, env: t.env)
        XCTAssertEqual(push.code, 0, push.err)
        XCTAssertEqual(parseJSON(push.out)["pushed"]?.intValue, 1, push.out)
        XCTAssertEqual(parseJSON(push.out)["not_found"], [], push.out)
        let pull = repro(["pull", "sim.yaml", "--set", "params.n=5"], cwd: t.b, env: t.env)
        XCTAssertEqual(pull.code, 0, pull.out + pull.err)
        let hit = repro(["run", "sim.yaml", "--set", "params.n=5", "--json"], cwd: t.b, env: envB(t))
        XCTAssertEqual(parseJSON(hit.out)["cache"], "hit", hit.err)
    }
}

extension TeamCacheTests {
    /// After checking out a commit whose .repro.yaml predates the remote, a run says once that
    /// the remote is gone; `remote add --local` keeps one whatever commit is checked out.
    func testAVanishedRemoteIsSaidOnceAndALocalRemoteStays() throws {
        let t = try makeTeam()
        XCTAssertEqual(repro(["run", "sim.yaml", "--set", "params.n=91"], cwd: t.b, env: envB(t)).code, 0)
        XCTAssertEqual(sh(["git", "checkout", "-q", "HEAD~1"], cwd: t.b).code, 0)
        let first = repro(["run", "sim.yaml", "--set", "params.n=92"], cwd: t.b, env: envB(t))
        XCTAssertEqual(first.code, 0, first.err)
        XCTAssertTrue(first.err.contains("note: remote 'origin' (s3://\(t.bucket)/team) was configured before and is not now"), first.err)
        let second = repro(["run", "sim.yaml", "--set", "params.n=93"], cwd: t.b, env: envB(t))
        XCTAssertFalse(second.err.contains("was configured before"), "said once: \(second.err)")
        let add = repro(["remote", "add", "origin", "s3://\(t.bucket)/team", "--endpoint", CloudTestEnv.s3, "--default", "--local"], cwd: t.b)
        XCTAssertEqual(add.code, 0, add.err)
        XCTAssertTrue(add.out.contains(".repro/config.yaml"), add.out)
        XCTAssertFalse(FileManager.default.fileExists(atPath: t.b + "/.repro.yaml"), "nothing written into the work tree")
        let list = repro(["remote", "list"], cwd: t.b, env: t.env)
        XCTAssertTrue(list.out.contains("origin"), list.out)
        XCTAssertEqual(repro(["remote", "remove", "origin"], cwd: t.b).code, 0)
    }

    /// `remote add` without --endpoint, when a backend of the project names one, says so.
    func testRemoteAddWithoutTheEndpointABackendUsesHints() throws {
        let repo = try TempRepo.seeded()
        repo.write(".repro.yaml", "backends:\n  cloud:\n    type: aws-batch\n    job_queue: q\n    job_definition: d\n    staging: s3://lab-bucket/s\n    endpoint: http://127.0.0.1:9000\n")
        repo.commitAll("backend")
        var env = CloudTestEnv.creds
        env["AWS_ENDPOINT_URL"] = nil
        env["AWS_ENDPOINT_URL_S3"] = nil
        let add = repro(["remote", "add", "team", "s3://lab-bucket/team"], cwd: repo.path, env: env)
        XCTAssertEqual(add.code, 0, add.err)
        XCTAssertTrue(add.err.contains("backend cloud uses the endpoint http://127.0.0.1:9000"), add.err)
        XCTAssertTrue(add.err.contains("--endpoint http://127.0.0.1:9000"), add.err)
    }
}

extension HookTests {
    /// Entries whose outputs were evicted are not "current again": they cannot be served.
    func testCheckoutDoesNotCallEvictedEntriesCurrentAgain() throws {
        let repo = try twoSpecRepo()
        XCTAssertEqual(repro(["hooks", "install"], cwd: repo.path).code, 0)
        XCTAssertEqual(repro(["run", "a.yaml"], cwd: repo.path).code, 0)
        XCTAssertEqual(repro(["run", "b.yaml"], cwd: repo.path).code, 0)
        let first = repo.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
        repo.write("a.sh", (repo.read("a.sh") ?? "") + "# faster\n", executable: true)
        repo.write("b.sh", (repo.read("b.sh") ?? "") + "# faster\n", executable: true)
        XCTAssertTrue(git(repo, ["commit", "-qam", "tweak both"]).err.contains("2 cache entries now stale"))
        // Both stale entries' outputs are evicted.
        XCTAssertEqual(parseJSON(repro(["cache", "gc", "--stale", "--json"], cwd: repo.path).out)["entries_evicted"], .int(2))
        let back = git(repo, ["checkout", "-q", first])
        XCTAssertFalse(back.err.contains("current again"), back.err)
        XCTAssertEqual(status(repo)["current"], .int(0))
        XCTAssertEqual(status(repo)["evicted"], .int(2))
    }
}

extension VerifyTests {
    /// Perturbed verify runs are their own line in `cache status`, not "invalidated by hand".
    func testCacheStatusNamesPerturbedVerifyRuns() throws {
        let repo = try fixtureRepo("threads.py")
        _ = verify(repo, ["--backends", "local", "--perturb"])
        let st = parseJSON(repro(["cache", "status", "--json"], cwd: repo.path).out)
        XCTAssertEqual(st["invalidated"], .int(0), "\(st)")
        XCTAssertGreaterThan(st["perturbed"]?.intValue ?? 0, 2)
        let text = repro(["cache", "status"], cwd: repo.path).out
        XCTAssertFalse(text.contains("invalidated by hand"), text)
        XCTAssertTrue(text.contains("`repro verify --perturb` runs: recorded, never served"), text)
    }
}

extension AuditTests {
    /// `lineage` lists runs in `audit`'s order: clean before uncommitted-patch runs, newest first.
    func testLineageAndAuditListRunsInOneOrder() throws {
        let repo = try TempRepo.seeded()
        let clean = runJSON(repo, ["run", "sim.yaml"])
        repo.write("sim/extra.txt", "uncommitted\n")
        let dirty = runJSON(repo, ["run", "sim.yaml", "--allow-dirty"])
        XCTAssertEqual(dirty["dirty"], .bool(true))
        let sha = dirty["outputs"]?.arrayValue?.first { $0["name"] == "result.json" }?["sha256"]?.stringValue ?? ""
        let audit = runJSON(repo, ["audit", sha])
        let auditOrder = audit["runs"]?.arrayValue?.compactMap { $0["run_id"]?.stringValue } ?? []
        let lineage = runJSON(repo, ["lineage", clean["run_id"]?.stringValue ?? ""])
        _ = lineage
        // Both runs made the same bytes: audit of the hash lists the clean one first.
        XCTAssertEqual(auditOrder.first, clean["run_id"]?.stringValue, "\(auditOrder)")
        let store = try Store(root: repo.path + "/.repro")
        let both = try [XCTUnwrap(store.run(id: clean["run_id"]?.stringValue ?? "")), XCTUnwrap(store.run(id: dirty["run_id"]?.stringValue ?? ""))]
        let graph = try Lineage(store: store, repoRoot: repo.path).graph(from: both.reversed())
        XCTAssertEqual(graph.nodes.map(\.runId), auditOrder)
    }
}

extension AuditTests {
    /// `log --verified` finds verified runs however many newer runs there are (it filtered the
    /// newest 10,000 in memory before, and older verified runs silently dropped out).
    func testLogVerifiedSearchesEveryRun() throws {
        let repo = try TempRepo.seeded()
        let v = repro(["verify", "sim.yaml", "--backends", "local", "--runs", "2", "--json"], cwd: repo.path)
        XCTAssertEqual(v.code, 0, v.err)
        let verifiedKey = parseJSON(v.out)["key"]?.stringValue ?? ""
        let store = try Store(root: repo.path + "/.repro")
        let template = try XCTUnwrap(try store.recentRuns(limit: 1).first)
        let newer = (0..<10_050).map { i -> RunRecord in
            var r = template
            r.runId = String(format: "bench-%08d", i)
            r.key = Hashing.sha256Hex("newer-\(i)")
            r.status = .succeeded
            return r
        }
        try store.insertForBenchmark(newer)
        let log = repro(["log", "--verified", "-n", "5", "--json"], cwd: repo.path)
        XCTAssertEqual(log.code, 0, log.err)
        let keys = Set((parseJSON(log.out).arrayValue ?? []).compactMap { $0["key"]?.stringValue })
        XCTAssertEqual(keys, [verifiedKey])
    }
}
