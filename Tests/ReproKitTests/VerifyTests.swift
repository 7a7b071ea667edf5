import Foundation
import XCTest

@testable import ReproKit
@testable import ReproSupport
@testable import ReproStore

/// `repro verify` against the fixtures in fixtures/verify, locally and on the SLURM test cluster.
final class VerifyTests: XCTestCase {
    func fixtureRepo(_ file: String, spec extra: String = "", name: String = "fixture") throws -> TempRepo {
        let repo = try TempRepo()
        let src = TestPaths.fixtures + "/verify/" + file
        repo.write(file, (try? String(contentsOfFile: src, encoding: .utf8)) ?? "", executable: true)
        let command = file.hasSuffix(".py") ? "[python3, \(file)]" : "[./\(file)]"
        repo.write("sim.yaml", "name: \(name)\ncommand: \(command)\ncode: [\(file)]\nseed: 7\n\(extra)")
        repo.commitAll("fixture")
        return repo
    }

    func verify(_ repo: TempRepo, _ args: [String]) -> (Int32, JSONValue, String) {
        let r = repro(["verify", "sim.yaml", "--json"] + args, cwd: repo.path)
        return (r.code, parseJSON(r.out), r.err)
    }

    func output(_ j: JSONValue, _ name: String) -> JSONValue {
        j["outputs"]?.arrayValue?.first { $0["name"]?.stringValue == name } ?? .null
    }

    func testComparatorToleranceAndULPs() {
        XCTAssertEqual(Tolerance.ulpDistance(1.0, 1.0.nextUp), 1)
        XCTAssertEqual(Tolerance.ulpDistance(-0.0, 0.0), 0)
        XCTAssertEqual(Tolerance.ulpDistance(1.0.nextDown, 1.0.nextUp), 2)
        let a = Array(#"{"x": 1.0, "y": [1, 2]}"#.utf8), b = Array(#"{"x": 1.0000000000000004, "y": [1, 3]}"#.utf8)
        let c = OutputComparator.compare(name: "r.json", a, b, tolerance: Tolerance(ulps: 4))
        XCTAssertEqual(c.verdict, .divergent)
        XCTAssertEqual(c.differences.map(\.location), ["y[1]"], "x is within 4 ULPs; only y[1] is listed")
        let x = OutputComparator.compare(
            name: "r.json", Array(#"{"x": 1.0}"#.utf8), Array(#"{"x": 1.0000000000000004}"#.utf8), tolerance: Tolerance(ulps: 4))
        XCTAssertEqual(x.verdict, .equivalent)
        XCTAssertEqual(x.maxUlps, 2)
        XCTAssertEqual(OutputComparator.compare(name: "r.json", Array(#"{"x": 1.0}"#.utf8), Array(#"{"x": 1.0000000000000004}"#.utf8)).verdict, .divergent)
        let csv = OutputComparator.compare(name: "t.csv", Array("a,b\n1,2\n".utf8), Array("a,b\n1,2.5\n".utf8))
        XCTAssertEqual(csv.differences.first?.location, "row 1, column b")
        let bin = OutputComparator.compare(name: "s.bin", [0, 1, 2, 0xFF], [0, 1, 3, 0xFF])
        XCTAssertEqual(bin.format, "binary")
        XCTAssertEqual(bin.differences.first?.location, "byte 2")
    }

    func testWallClockFieldIsNamedAndDivergentExitsThree() throws {
        let repo = try fixtureRepo("clock.sh")
        let (code, j, err) = verify(repo, ["--backends", "local", "--runs", "2"])
        XCTAssertEqual(code, 3, err)
        XCTAssertEqual(j["verdict"], "DIVERGENT")
        let o = output(j, "result.json")
        XCTAssertEqual(o["verdict"], "DIVERGENT")
        XCTAssertEqual(o["differences"]?.arrayValue?.first?["location"], "computed_at_ns")
        for f in ["max_abs", "max_rel", "max_ulps", "differences"] { XCTAssertNotNil(o[f], f) }
        XCTAssertEqual(j["runs"]?.arrayValue?.count, 2)
        // Recorded: audit, show and log --verified see it.
        let key = j["key"]?.stringValue ?? ""
        let audit = parseJSON(repro(["audit", key, "--json"], cwd: repo.path).out)
        XCTAssertEqual(audit["runs"]?.arrayValue?.first?["verifications"]?.arrayValue?.first?["verdict"], "DIVERGENT")
        XCTAssertEqual(parseJSON(repro(["log", "--verified", "--json"], cwd: repo.path).out).arrayValue?.count, 2)
        XCTAssertTrue(repro(["show", j["runs"]?.arrayValue?.first?["run_id"]?.stringValue ?? ""], cwd: repo.path).out.contains("verified   DIVERGENT"))
    }

    func testUnseededRandomnessDivergesAndBinaryOffsetIsReported() throws {
        let repo = try fixtureRepo("unseeded.sh")
        let (code, j, err) = verify(repo, ["--backends", "local", "--runs", "2"])
        XCTAssertEqual(code, 3, err)
        XCTAssertEqual(output(j, "result.json")["differences"]?.arrayValue?.first?["location"], "sample")
        let bin = output(j, "state.bin")
        XCTAssertEqual(bin["verdict"], "DIVERGENT")
        // Ten bytes from 1000 on differ between any two runs (the first of them may agree).
        let location = bin["differences"]?.arrayValue?.first?["location"]?.stringValue ?? ""
        XCTAssertTrue(location.hasPrefix("byte 100"), location)
    }

    func testPerturbNamesLangAndTZ() throws {
        let repo = try fixtureRepo("locale_tz.py")
        let plain = verify(repo, ["--backends", "local", "--runs", "2"])
        XCTAssertEqual(plain.1["verdict"], "IDENTICAL", "reproducible under repro's fixed environment: \(plain.2)")
        let (code, j, err) = verify(repo, ["--backends", "local", "--perturb"])
        XCTAssertEqual(code, 3, err)
        let causes = (j["causes"]?.arrayValue ?? []).compactMap(\.stringValue)
        // LANG is a real, installed (or generated) locale: the simulation's own setlocale takes it.
        XCTAssertTrue(causes.contains("LANG"), "\(causes) \(err)")
        XCTAssertEqual(j["not_applied"], [])
        XCTAssertTrue(causes.contains("TZ"), "\(causes)")
        XCTAssertFalse(causes.contains("umask"), "\(causes)")
        // Perturbed runs are recorded but never serve the cache.
        XCTAssertEqual(parseJSON(repro(["run", "sim.yaml", "--json"], cwd: repo.path).out)["cache"], "hit")
        let store = try Store(root: repo.path + "/.repro")
        let perturbed = try store.recentRuns(limit: 50).filter { $0.invalidatedReason != nil }
        XCTAssertGreaterThan(perturbed.count, 2)
    }

    func testThreadCountSumsAreDivergentByDefaultAndEquivalentWithinULPs() throws {
        let strict = try fixtureRepo("threads.py")
        let (code, j, err) = verify(strict, ["--backends", "local", "--perturb"])
        XCTAssertEqual(code, 3, err)
        XCTAssertTrue((j["causes"]?.arrayValue ?? []).contains { $0.stringValue?.hasPrefix("threads=") == true }, "\(j["causes"] ?? .null)")
        XCTAssertEqual(j["thread_counts"]?.arrayValue?.compactMap(\.intValue).prefix(2), [1, 2])
        let ulps = output(j, "result.json")["max_ulps"]?.intValue ?? 0
        XCTAssertGreaterThan(ulps, 0)
        XCTAssertLessThanOrEqual(ulps, 16)

        let tolerant = try fixtureRepo("threads.py", spec: "verify: {ulps: 16}\n")
        let (tcode, tj, terr) = verify(tolerant, ["--backends", "local", "--perturb"])
        XCTAssertEqual(tcode, 0, terr)
        XCTAssertEqual(tj["verdict"], "EQUIVALENT")
        XCTAssertEqual(output(tj, "result.json")["verdict"], "EQUIVALENT")
    }

    /// A difference at 2 threads that 3 threads does not show is found: several counts are tried.
    func testThreadCountsOneTwoAndTheCoresAreEachTried() throws {
        let repo = try fixtureRepo("threads_pow2.py")
        // One thread count alone (3: what verify tried before) shows nothing.
        let three = repro(["run", "sim.yaml", "--set", "env.OMP_NUM_THREADS=3", "--json"], cwd: repo.path)
        let one = repro(["run", "sim.yaml", "--set", "env.OMP_NUM_THREADS=1", "--json"], cwd: repo.path)
        XCTAssertEqual(outputHashes(parseJSON(three.out)), outputHashes(parseJSON(one.out)), three.err + one.err)
        let (code, j, err) = verify(repo, ["--backends", "local", "--perturb"])
        XCTAssertEqual(code, 3, err)
        let causes = (j["causes"]?.arrayValue ?? []).compactMap(\.stringValue)
        XCTAssertTrue(causes.contains("threads=2"), "\(causes)")
        XCTAssertFalse(causes.contains("threads=1"), "\(causes)")
        let text = repro(["verify", "sim.yaml", "--backends", "local", "--perturb"], cwd: repo.path)
        XCTAssertTrue(text.out.contains("thread counts tried: 1, 2"), text.out)
    }

    /// The locale the LANG perturbation uses really exists for the simulation.
    func testTheLANGPerturbationUsesALocaleThatExists() throws {
        let store = NSTemporaryDirectory() + "locale-store-" + UUID().uuidString.prefix(6)
        try FileIO.makeDirectory(store)
        defer { FileIO.removeTree(store) }
        guard case .success(let env) = Perturbations.availableLocale(storeRoot: store) else {
            return XCTFail("no locale could be made")
        }
        var e = env
        e["PATH"] = "/usr/bin:/bin"
        let r = sh(["/usr/bin/python3", "-c", "import locale; locale.setlocale(locale.LC_ALL, ''); print(locale.format_string('%.2f', 3.5))"], cwd: "/", env: e)
        XCTAssertEqual(r.out, "3,50\n", r.err)
    }

    func testExampleSimulationIsIdenticalOnLocalAndSlurm() throws {
        try requireSlurmCluster()
        let repo = try TempRepo()
        let sim = (try? String(contentsOfFile: TestPaths.fixtures + "/dna-repair/sim.py", encoding: .utf8)) ?? ""
        repo.write("fixtures/dna-repair/sim.py", sim, executable: true)
        repo.write(
            "sim.yaml",
            """
            name: dna-repair
            command: [python3, fixtures/dna-repair/sim.py]
            code: [fixtures/dna-repair/sim.py]
            outputs: [result.json, "traj/*.csv"]
            params: {population_size: 200, dose_gy: 2.0, pathways: [NHEJ, HR], t_end_h: 12}
            seed: 42
            solver: {rtol: 1e-6, atol: 1e-9}
            """)
        repo.commitAll()
        let (code, j, err) = verify(repo, [])
        XCTAssertEqual(code, 0, err)
        XCTAssertEqual(j["verdict"], "IDENTICAL")
        XCTAssertEqual(Set((j["runs"]?.arrayValue ?? []).compactMap { $0["backend"]?.stringValue }), ["local", "slurm"])
        // The SLURM run's record carries its job id and the node it ran on.
        let slurmRun = j["runs"]?.arrayValue?.first { $0["backend"] == "slurm" } ?? .null
        let record = parseJSON(repro(["show", slurmRun["run_id"]?.stringValue ?? "", "--json"], cwd: repo.path).out)
        XCTAssertEqual(record["backend"], "slurm")
        XCTAssertNotEqual(record["job_id"], .null)
        XCTAssertEqual(record["job_id"], slurmRun["job_id"])
        XCTAssertEqual(record["host"]?.stringValue, sh(["hostname"], cwd: "/").out.trimmingCharacters(in: .whitespacesAndNewlines))
        // The clock fixture on local vs SLURM: the differing field is named.
        let clock = try fixtureRepo("clock.sh")
        let (ccode, cj, cerr) = verify(clock, [])
        XCTAssertEqual(ccode, 3, cerr)
        XCTAssertEqual(output(cj, "result.json")["differences"]?.arrayValue?.first?["location"], "computed_at_ns")
    }
}
