import Foundation
import XCTest

@testable import ReproKit
@testable import ReproSupport
@testable import ReproStore

/// Answers a user found wrong in verify, audit, lineage and the record (issue "trustworthy
/// answers"): each was seen, and each test failed before its fix.
final class TrustTests: XCTestCase {
    func runJSON(_ repo: TempRepo, _ args: [String], env: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line) -> JSONValue {
        let r = repro(args + ["--json"], cwd: repo.path, env: env)
        XCTAssertEqual(r.code, 0, r.err, file: file, line: line)
        return parseJSON(r.out, file: file, line: line)
    }

    // MARK: verify

    func testOneExecutionIsNeverCalledIdentical() throws {
        let repo = try TempRepo()
        repo.write("sim.sh", "#!/bin/sh\nhead -c 16 /dev/urandom | od -An -tx1 > \"$REPRO_OUTDIR/r.txt\"\n", executable: true)
        repo.write("sim.yaml", "name: unseeded\ncommand: [./sim.sh]\ncode: [sim.sh]\n")
        repo.commitAll()
        let refused = repro(["verify", "sim.yaml", "--backends", "local"], cwd: repo.path)
        XCTAssertEqual(refused.code, 2, refused.out + refused.err)
        XCTAssertTrue(refused.err.contains("at least two executions") && refused.err.contains("--runs 2"), refused.err)
        XCTAssertEqual(try Store(root: repo.path + "/.repro").recentRuns(limit: 5).count, 0, "nothing ran, nothing recorded")
        // With a stored run: the fresh run is compared against it (and this one differs).
        XCTAssertEqual(repro(["run", "sim.yaml"], cwd: repo.path).code, 0)
        let r = repro(["verify", "sim.yaml", "--backends", "local", "--json"], cwd: repo.path)
        XCTAssertEqual(r.code, 3, r.err)
        let j = parseJSON(r.out)
        XCTAssertEqual(j["verdict"], "DIVERGENT")
        XCTAssertEqual(j["runs"]?.arrayValue?.count, 2)
        XCTAssertEqual(j["runs"]?.arrayValue?.first?["variation"], "stored run")
    }

    func testCRLFCSVIsParsedPerRFC4180() {
        let a = Array("t,name,value\r\n0,\"a, b\",1.0\r\n1,\"multi\r\nline \"\"quoted\"\"\",2.0\r\n".utf8)
        let same = OutputComparator.compare(name: "x.csv", a, a + [])
        XCTAssertEqual(same.verdict, .identical)
        let b = Array("t,name,value\r\n0,\"a, b\",1.0\r\n1,\"multi\r\nline \"\"quoted\"\"\",2.5\r\n".utf8)
        let c = OutputComparator.compare(name: "x.csv", a, b)
        XCTAssertEqual(c.verdict, .divergent)
        XCTAssertEqual(c.differences.map(\.location), ["row 2, column value"])
        // The same data with LF line ends and with CRLF differ only in bytes, not in fields.
        let lf = Array("t,v\n0,1.0\n1,2.0\n".utf8), crlf = Array("t,v\r\n0,1.0\r\n1,2.0\r\n".utf8)
        XCTAssertEqual(OutputComparator.compare(name: "x.csv", lf, crlf).verdict, .equivalent)
        XCTAssertEqual(CSV.parse("a,\"b\"\"c\",d\r\n", separator: ","), [["a", "b\"c", "d"]])
    }

    func testANumberGoingToZeroIsAFiniteRelativeError() throws {
        let c = OutputComparator.compare(name: "r.json", Array(#"{"x": 5.0}"#.utf8), Array(#"{"x": 0}"#.utf8))
        XCTAssertEqual(c.verdict, .divergent)
        XCTAssertEqual(c.maxRel, 1)
        XCTAssertEqual(try JSONParser.parse(c.json.canonical)["max_rel"], .double(1))
        XCTAssertEqual(JSONValue.double(.infinity).canonical, "null", "no non-finite number reaches JSON output")
        // The CLI: diff --json of two runs whose number went to zero.
        let repo = try TempRepo()
        repo.write("sim.sh", "#!/bin/sh\necho \"{\\\"x\\\": $1}\" > \"$REPRO_OUTDIR/result.json\"\n", executable: true)
        repo.write("sim.yaml", "name: zero\ncommand: [./sim.sh, '{params.x}']\ncode: [sim.sh]\nparams: {x: 5.0}\n")
        repo.commitAll()
        let a = runJSON(repo, ["run", "sim.yaml"])
        let b = runJSON(repo, ["run", "sim.yaml", "--set", "params.x=0"])
        let d = repro(["diff", a["run_id"]?.stringValue ?? "", b["run_id"]?.stringValue ?? "", "--json"], cwd: repo.path)
        XCTAssertEqual(d.code, 1, d.err)
        XCTAssertEqual(parseJSON(d.out)["outputs"]?.arrayValue?.first?["max_rel"], .double(1))
    }

    /// A run made with --set, from a subdirectory, or as a sweep point verifies from its record.
    func testVerifyARunFromItsRecordedIdentity() throws {
        let repo = try TempRepo.seeded()
        try FileManager.default.createDirectory(atPath: repo.path + "/sub", withIntermediateDirectories: true)
        let set = runJSON(repo, ["run", "sim.yaml", "--set", "params.n=77"])
        XCTAssertEqual(set["spec"], "sim.yaml")
        let fromSub = repro(["run", "../sim.yaml", "--set", "params.n=78", "--json"], cwd: repo.path + "/sub")
        XCTAssertEqual(fromSub.code, 0, fromSub.err)
        XCTAssertEqual(parseJSON(fromSub.out)["spec"], "sim.yaml", "the spec path is recorded relative to the repository")
        repo.write("sweep.yaml", "base: sim.yaml\ngrid: {params.n: [5, 6]}\n")
        repo.commitAll("sweep")
        let sweep = runJSON(repo, ["sweep", "sweep.yaml"])
        let point = sweep["runs"]?.arrayValue?.first?["run_id"]?.stringValue ?? ""
        for (id, cwd) in [(set["run_id"]?.stringValue ?? "", repo.path), (parseJSON(fromSub.out)["run_id"]?.stringValue ?? "", repo.path + "/sub"),
            (point, repo.path)]
        {
            let v = repro(["verify", id, "--backends", "local", "--runs", "2", "--json"], cwd: cwd)
            XCTAssertEqual(v.code, 0, "verify \(id): \(v.err)")
            XCTAssertEqual(parseJSON(v.out)["verdict"], "IDENTICAL")
        }
        // --set on verify for a spec file.
        let v = repro(["verify", "sim.yaml", "--set", "params.n=77", "--backends", "local", "--runs", "2", "--json"], cwd: repo.path)
        XCTAssertEqual(v.code, 0, v.err)
        XCTAssertEqual(parseJSON(v.out)["key"], set["key"])
    }

    func testPerturbedRunsRecordTheirOwnEnvironmentAndStayOutOfTheResultsView() throws {
        let repo = try TempRepo()
        repo.write("sim.sh", "#!/bin/sh\necho same > \"$REPRO_OUTDIR/o.txt\"\n", executable: true)
        repo.write("sim.yaml", "name: env\ncommand: [./sim.sh]\ncode: [sim.sh]\noutputs: [o.txt]\n")
        repo.commitAll()
        XCTAssertEqual(repro(["run", "sim.yaml"], cwd: repo.path).code, 0)
        let r = repro(["verify", "sim.yaml", "--backends", "local", "--perturb"], cwd: repo.path)
        XCTAssertEqual(r.code, 0, r.err)
        let store = try Store(root: repo.path + "/.repro")
        let perturbed = try store.recentRuns(limit: 50).filter { $0.invalidatedReason?.contains("TZ") ?? false }
        XCTAssertFalse(perturbed.isEmpty)
        for run in perturbed { XCTAssertEqual(run.env["TZ"], "XST-05:30", "run \(run.runId) records the TZ it ran under") }
        let rows = sh(["sqlite3", repo.path + "/.repro/store.sqlite", "select count(*) from results"], cwd: "/").out
        XCTAssertEqual(rows.trimmingCharacters(in: .whitespacesAndNewlines), "2", "the plain run and verify's plain rerun; no perturbed ones")
    }

    func testASimulationWritingItsOwnOutputPathIsNotBlamedOnTheClock() throws {
        let repo = try TempRepo()
        repo.write("sim.sh", "#!/bin/sh\necho \"{\\\"written_to\\\": \\\"$REPRO_OUTDIR\\\"}\" > \"$REPRO_OUTDIR/result.json\"\n", executable: true)
        repo.write("sim.yaml", "name: selfpath\ncommand: [./sim.sh]\ncode: [sim.sh]\n")
        repo.commitAll()
        let r = repro(["verify", "sim.yaml", "--backends", "local", "--perturb", "--json"], cwd: repo.path)
        XCTAssertEqual(r.code, 3, r.err)
        XCTAssertEqual(parseJSON(r.out)["causes"], ["output path"])
    }

    // MARK: audit and lineage

    /// Two configs produce the same bytes; lineage and audit name the run that served the file.
    func testLineageAndAuditNameTheRunThatServedTheFile() throws {
        let repo = try TempRepo()
        repo.write("make.sh", "#!/bin/sh\necho constant > \"$REPRO_OUTDIR/data.txt\"\n", executable: true)
        repo.write("use.sh", "#!/bin/sh\ncat \"$1\" > \"$REPRO_OUTDIR/used.txt\"\n", executable: true)
        repo.write("a.yaml", "name: producer\ncommand: [./make.sh]\ncode: [make.sh]\nparams: {variant: 1}\n")
        repo.commitAll()
        let first = runJSON(repo, ["run", "a.yaml", "--out", "inputs/a"])
        let other = runJSON(repo, ["run", "a.yaml", "--set", "params.variant=2", "--out", "inputs/b"])
        XCTAssertNotEqual(first["run_id"], other["run_id"])
        repo.write("b.yaml", "name: consumer\ncommand: [./use.sh, inputs/a/data.txt]\ncode: [use.sh]\ninputs: [inputs/a/data.txt]\n")
        repo.write(".gitignore", "inputs/\n")
        repo.commitAll("consumer")
        let consumer = runJSON(repo, ["run", "b.yaml"])
        let lineage = runJSON(repo, ["lineage", consumer["run_id"]?.stringValue ?? ""])
        let edge = lineage["edges"]?.arrayValue?.first
        XCTAssertEqual(edge?["from"], first["run_id"], "the run that served inputs/a/data.txt, not the newest with those bytes")
        let audit = runJSON(repo, ["audit", repo.path + "/inputs/a/data.txt"])
        XCTAssertEqual(audit["runs"]?.arrayValue?.first?["run_id"], first["run_id"])
        XCTAssertEqual(audit["runs"]?.arrayValue?.first?["served_this_file"], .bool(true))
    }

    func testAttestationPassesWhenAnyProducingRunVerifies() throws {
        let repo = try TempRepo()
        repo.write("make.sh", "#!/bin/sh\necho constant > \"$REPRO_OUTDIR/data.txt\"\n", executable: true)
        repo.write("a.yaml", "name: producer\ncommand: [./make.sh]\ncode: [make.sh]\nparams: {variant: 1}\n")
        repo.commitAll()
        let signed = runJSON(repo, ["run", "a.yaml"])
        let key = repo.path + "/../k-\(UUID().uuidString.prefix(8))"
        XCTAssertEqual(repro(["keygen", "--out", key], cwd: repo.path).code, 0)
        defer {
            unlink(key)
            unlink(key + ".pub")
        }
        XCTAssertEqual(repro(["attest", signed["run_id"]?.stringValue ?? "", "--key", key], cwd: repo.path).code, 0)
        let unsigned = runJSON(repo, ["run", "a.yaml", "--set", "params.variant=2"])
        let file = try XCTUnwrap(unsigned["outputs_dir"]?.stringValue) + "/data.txt"
        let r = repro(["audit", file, "--verify-attestation", "--pubkey", key + ".pub", "--json"], cwd: repo.path)
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.err.contains("attestation verified for run \(signed["run_id"]?.stringValue ?? "")"), r.err)
    }

    // MARK: small things

    func testNoSolverLeavesToleranceVariablesUnset() throws {
        let repo = try TempRepo()
        repo.write("sim.sh", "#!/bin/sh\necho \"${REPRO_RTOL-unset} ${REPRO_ATOL-unset}\" > \"$REPRO_OUTDIR/o.txt\"\n", executable: true)
        repo.write("sim.yaml", "name: nosolver\ncommand: [./sim.sh]\ncode: [sim.sh]\n")
        repo.commitAll()
        let out = try runSpec(repo)
        XCTAssertEqual(try String(contentsOfFile: out.outputPaths["o.txt"] ?? "", encoding: .utf8), "unset unset\n")
    }

    func testExitCodesScriptsCanRelyOn() throws {
        let repo = try TempRepo.seeded()
        XCTAssertEqual(repro(["why", "sim.yaml"], cwd: repo.path).code, 1, "would miss")
        XCTAssertEqual(repro(["run", "sim.yaml"], cwd: repo.path).code, 0)
        XCTAssertEqual(repro(["why", "sim.yaml"], cwd: repo.path).code, 0, "would hit")
        XCTAssertEqual(repro(["why", "sim.yaml", "--set", "seed=9"], cwd: repo.path).code, 1)
        XCTAssertEqual(repro(["show", "20990101-000000-0000000000"], cwd: repo.path).code, 5)
        XCTAssertEqual(repro(["logs", "20990101-000000-0000000000"], cwd: repo.path).code, 5)
        let help = repro(["cache", "refresh", "--help"], cwd: repo.path)
        XCTAssertEqual(help.code, 0)
        XCTAssertTrue(help.out.contains("USAGE: repro cache refresh"), help.out)
        XCTAssertEqual(repro(["cache", "refresh", "--bogus"], cwd: repo.path).code, 2)
    }

    func testLogsLogFiltersAndShowOfAVerification() throws {
        let repo = try TempRepo.seeded()
        let a = runJSON(repo, ["run", "sim.yaml"])
        _ = runJSON(repo, ["run", "sim.yaml", "--set", "params.n=12"])
        let fail = repro(["run", "sim.yaml", "--set", "params.n=fail-now"], cwd: repo.path)
        XCTAssertEqual(fail.code, 1)
        let logs = repro(["logs", a["run_id"]?.stringValue ?? ""], cwd: repo.path)
        XCTAssertEqual(logs.code, 0, logs.err)
        XCTAssertEqual(logs.out, "seeded: seed 42 n 10\n")
        let failed = parseJSON(repro(["log", "--status", "failed", "--json"], cwd: repo.path).out)
        XCTAssertEqual(failed.arrayValue?.count, 1)
        let stderr = repro(["logs", failed.arrayValue?.first?["run_id"]?.stringValue ?? "", "--stderr"], cwd: repo.path)
        XCTAssertTrue(stderr.out.contains("asked to fail"), stderr.out)
        let table = repro(["log", "--name", "seeded", "--param", "n", "--param", "solver.rtol", "--since", "1h"], cwd: repo.path)
        XCTAssertEqual(table.code, 0, table.err)
        XCTAssertTrue(table.out.contains("N") && table.out.contains("SOLVER.RTOL") && table.out.contains("12"), table.out)
        XCTAssertEqual(parseJSON(repro(["log", "--name", "other", "--json"], cwd: repo.path).out).arrayValue?.count, 0)
        XCTAssertEqual(repro(["log", "--status", "bogus"], cwd: repo.path).code, 2)
        let v = repro(["verify", "sim.yaml", "--backends", "local", "--runs", "2", "--json"], cwd: repo.path)
        let vid = parseJSON(v.out)["verification_id"]?.stringValue ?? ""
        let show = repro(["show", vid], cwd: repo.path)
        XCTAssertEqual(show.code, 0, show.err)
        XCTAssertTrue(show.out.contains("verdict      IDENTICAL"), show.out)
    }

    // MARK: the record is what ran

    /// A wrapper named python3 (as pyenv's shim is) is resolved to the real interpreter, whose
    /// version and packages are recorded; `repro diff` shows a package change.
    func testTheRealInterpreterAndItsPackagesAreRecorded() throws {
        let repo = try TempRepo()
        let bin = ((repo.path + "/../bin-\(UUID().uuidString.prefix(6))") as NSString).standardizingPath
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: bin + "/python3", contents: Data("#!/bin/sh\nexec /usr/bin/python3 \"$@\"\n".utf8))
        chmod(bin + "/python3", 0o755)
        let site = repo.path + "/../site-\(UUID().uuidString.prefix(6))"
        func install(_ version: String) throws {
            for old in (try? FileManager.default.contentsOfDirectory(atPath: site)) ?? [] {
                try FileManager.default.removeItem(atPath: site + "/" + old)
            }
            let dist = site + "/fakepkg-\(version).dist-info"
            try FileManager.default.createDirectory(atPath: dist, withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: dist + "/METADATA", contents: Data("Metadata-Version: 2.1\nName: fakepkg\nVersion: \(version)\n".utf8))
        }
        try install("1.0")
        repo.write("sim.py", "import os\nopen(os.environ['REPRO_OUTDIR'] + '/o.txt', 'w').write('x')\n")
        repo.write("sim.yaml", "name: py\ncommand: [python3, sim.py]\ncode: [sim.py]\nenv: {PYTHONPATH: \(site)}\n")
        repo.commitAll()
        let env = ["PATH": bin + ":/usr/bin:/bin"]
        let a = runJSON(repo, ["run", "sim.yaml"], env: env)
        XCTAssertEqual(a["executable"], .string(bin + "/python3"), "the program PATH found (a wrapper)")
        // The interpreter behind it, as that process named itself (symlinks are not resolved: a
        // venv's bin/python is a link, and only the link selects the venv).
        XCTAssertEqual(a["interpreter"]?["path"]?.stringValue, "/usr/bin/python3", "the interpreter behind it")
        let version = sh(["/usr/bin/python3", "-c", "import platform; print(platform.python_version())"], cwd: "/").out
        XCTAssertEqual(a["interpreter"]?["version"]?.stringValue, version.trimmingCharacters(in: .whitespacesAndNewlines))
        let store = try Store(root: repo.path + "/.repro")
        let packages = String(decoding: try store.readBlob(a["packages_blob"]?.stringValue ?? ""), as: UTF8.self)
        XCTAssertTrue(packages.contains("fakepkg==1.0\n"), packages)
        try install("2.0")
        let b = runJSON(repo, ["run", "sim.yaml", "--no-cache"], env: env)
        let d = repro(["diff", a["run_id"]?.stringValue ?? "", b["run_id"]?.stringValue ?? "", "--json"], cwd: repo.path)
        let change = parseJSON(d.out)["identity"]?.arrayValue?.first { $0["field"]?.stringValue == "package fakepkg" }
        XCTAssertEqual(change?["a"], "1.0", d.out)
        XCTAssertEqual(change?["b"], "2.0", d.out)
        XCTAssertEqual(repro(["fsck"], cwd: repo.path).code, 0, "package blobs are referenced")
    }

    func testRunIdsSortByTimeAndStartedAtIsWhenExecutionBegan() throws {
        var ids: [String] = []
        for _ in 0..<200 { ids.append(HostInfo.newRunId()) }
        XCTAssertEqual(ids, ids.sorted(), "ids made later sort later, within a second too")
        XCTAssertEqual(Set(ids).count, ids.count)
        let repo = try TempRepo.seeded(
            spec: TempRepo.defaultSpec.replacingOccurrences(of: "[COUNTER_FILE]", with: "[COUNTER_FILE, SIM_SLEEP]"))
        repo.write("sweep.yaml", "base: sim.yaml\ngrid: {params.n: [1, 2, 3, 4]}\n")
        repo.commitAll("sweep")
        XCTAssertEqual(repro(["sweep", "sweep.yaml", "--jobs", "1"], cwd: repo.path, env: ["SIM_SLEEP": "0.3"]).code, 0)
        let runs = try Store(root: repo.path + "/.repro").recentRuns(limit: 10).sorted { $0.runId < $1.runId }
        XCTAssertEqual(runs.count, 4)
        // One at a time: each began after the previous finished, though all were queued at once.
        for (x, y) in zip(runs, runs.dropFirst()) {
            XCTAssertLessThanOrEqual(x.finishedAt ?? "", y.startedAt, "\(x.runId) finished before \(y.runId) started")
            XCTAssertNotNil(y.queuedAt)
            XCTAssertLessThan(y.queuedAt ?? "", y.startedAt)
        }
    }

    func testFailFastStartsNothingAfterTheFirstFailure() throws {
        let repo = try TempRepo.seeded()
        let counter = repo.path + "/.git/counter"
        let points = ["fail-first"] + (1...20).map(String.init)
        repo.write("sweep.yaml", "base: sim.yaml\nlist: [\(points.map { "{params.n: \"\($0)\"}" }.joined(separator: ", "))]\n")
        repo.commitAll("sweep")
        let r = repro(["sweep", "sweep.yaml", "--jobs", "1", "--fail-fast", "--json"], cwd: repo.path, env: ["COUNTER_FILE": counter])
        XCTAssertEqual(r.code, 1, r.err)
        XCTAssertEqual(lineCount(counter), 1, "only the failing point ran")
        let j = parseJSON(r.out)
        XCTAssertEqual(j["failed"], .int(1))
        XCTAssertEqual(j["succeeded"], .int(0))
        XCTAssertEqual(j["not_run"], .int(20), "the rest are 'not run', not failures")
        XCTAssertEqual(j["interrupted"], .int(0), "none of them started")
        XCTAssertEqual(try Store(root: repo.path + "/.repro").recentRuns(limit: 50).count, 1, "points that never started are not runs")
    }
}
