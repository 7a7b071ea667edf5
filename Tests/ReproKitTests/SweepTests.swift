import Foundation
import XCTest

@testable import ReproKit
@testable import ReproSupport
@testable import ReproStore

/// Sweep files, point expansion and local sweeps (resume, failures, fail-fast, --json).
final class SweepTests: XCTestCase {
    /// A point validates only the fields it changes over its (valid) base spec: every field
    /// must come out as validating the whole point would give, and so must the first error.
    func testPointsValidatedIncrementallyEqualWholeValidation() throws {
        let dir = NSTemporaryDirectory() + "sweep-inc-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        FileManager.default.createFile(
            atPath: dir + "/sim.yaml",
            contents: Data(
                "name: s\ncommand: [x, \"{params.n}\"]\nparams: {n: 4, m: {k: 1}}\nseed: 1\nestimate: {seconds: \"params.n * 2\", scale: params.n}\n"
                    .utf8))
        FileManager.default.createFile(
            atPath: dir + "/sweep.yaml",
            contents: Data(
                """
                base: sim.yaml
                grid: {params.n: [1, 2.5], params.m.k: [x, 3]}
                list: [{name: other, solver.rtol: 1e-7}, {command: "y --z", timeout: 30, env.A: "1"}, {seed: auto, backend: local},
                       {outputs: [a.txt], inputs: [d.csv], code: [src], verify.rtol: 1e-3, report.y: ["a.txt:$.x"], resources.cpus: 2},
                       {env_passthrough: [HOME], estimate.seconds: "params.n + 1"}]
                replicates: 2
                """.utf8))
        var sweep = try SweepSpec.load(path: dir + "/sweep.yaml")
        XCTAssertNotNil(sweep.baseSpec)
        let fast = try sweep.specs()
        sweep.baseSpec = nil
        let whole = try sweep.specs()
        XCTAssertEqual(fast.count, 2 * 2 * 5 * 2)
        func describe(_ s: SimulationSpec) -> String {
            [s.name, s.configHash, String(decoding: s.semanticConfigCanonical, as: UTF8.self), s.backend, "\(String(describing: s.timeout))",
             JSONValue.object(s.resources).canonical, "\(s.verify)", s.reportY.joined(separator: ","), s.sourcePath,
             s.estimate.map { "\($0.seconds?.text ?? "-") \($0.scale ?? []) \($0.origin)" } ?? "none", "\(s.resolvedSeed)"].joined(separator: "|")
        }
        XCTAssertEqual(fast.map(describe), whole.map(describe))
        // Points that set only params (their own shortcut): new and existing names, every kind
        // of value, the estimate recomputed from them.
        FileManager.default.createFile(
            atPath: dir + "/params.yaml",
            contents: Data("base: sim.yaml\ngrid: {params.n: [1, 2.5, 7], params.new: [[1, 2], {a: b}, \"s\", null, yes, 0755]}\n".utf8))
        var params = try SweepSpec.load(path: dir + "/params.yaml")
        let paramsFast = try params.specs()
        params.baseSpec = nil
        XCTAssertEqual(paramsFast.count, 18)
        XCTAssertEqual(paramsFast.map(describe), try params.specs().map(describe))
        XCTAssertEqual(paramsFast[1].params["new"], .object(["a": .string("b")]))
        XCTAssertEqual(paramsFast[1].estimate?.scale, ["n"])
        // A point that breaks the spec fails the same way either way.
        FileManager.default.createFile(
            atPath: dir + "/bad.yaml", contents: Data("base: sim.yaml\nlist: [{params.n: 1}, {params.n: x}, {seed: -1}]\n".utf8))
        var bad = try SweepSpec.load(path: dir + "/bad.yaml")
        func message(_ s: SweepSpec) -> String {
            do {
                _ = try s.specs()
                return "no error"
            } catch { return error.message }
        }
        let fastError = message(bad)
        bad.baseSpec = nil
        XCTAssertEqual(fastError, message(bad))
        XCTAssertTrue(fastError.contains("estimate"), fastError)
    }

    func testGridZipListAndReplicatesExpand() throws {
        let dir = NSTemporaryDirectory() + "sweep-spec-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        FileManager.default.createFile(atPath: dir + "/sim.yaml", contents: Data("name: s\ncommand: [x]\nparams: {a: 0}\nseed: 1\n".utf8))
        FileManager.default.createFile(
            atPath: dir + "/sweep.yaml",
            contents: Data(
                """
                base: sim.yaml
                grid: {params.a: [1, 2], solver.rtol: [1e-6, 1e-8]}
                zip: {params.b: [x, y], params.c: [10, 20]}
                list: [{params.d: true}, {seed: 5}]
                replicates: 3
                """.utf8))
        let sweep = try SweepSpec.load(path: dir + "/sweep.yaml")
        XCTAssertEqual(sweep.count, 2 * 2 * 2 * 2 * 3)
        let specs = try sweep.specs()
        XCTAssertEqual(specs.count, 48)
        XCTAssertEqual(Set(specs.map(\.configHash)).count, 48, "replicates get their own seeds, so every point differs")
        XCTAssertEqual(specs[0].params["a"], .int(1))
        XCTAssertEqual(specs[0].rtol, 1e-6)
        XCTAssertEqual(specs[0].params["b"], "x")
        XCTAssertEqual(specs[0].params["c"], .int(10))
        XCTAssertEqual(specs[0].params["d"], .bool(true))
        // Replicate seeds are stable.
        XCTAssertEqual(try SweepSpec.load(path: dir + "/sweep.yaml").specs().map(\.resolvedSeed), specs.map(\.resolvedSeed))

        func error(_ text: String) -> String {
            FileManager.default.createFile(atPath: dir + "/bad.yaml", contents: Data(text.utf8))
            do {
                _ = try SweepSpec.load(path: dir + "/bad.yaml").specs()
                return ""
            } catch { return "\(error)" }
        }
        XCTAssertTrue(error("base: sim.yaml\nzip: {params.a: [1, 2], params.b: [1]}\n").contains("equal lengths"))
        XCTAssertTrue(error("base: sim.yaml\ngrid: {params.a: 3}\n").contains("non-empty list"))
        XCTAssertTrue(error("base: nope.yaml\n").contains("does not exist"))
        XCTAssertTrue(error("base: sim.yaml\ngird: {}\n").contains("unknown key 'gird'"))
        XCTAssertTrue(error("base: sim.yaml\ngrid: {colour: [1]}\n").contains("not a spec path"))
        XCTAssertTrue(error("base: sim.yaml\ngrid: {solver.rtol: [-1]}\n").contains("solver.rtol must be finite and >= 0"))
        XCTAssertTrue(error("base: sim.yaml\nbackend: 'mars rover'\n").contains("backend must name a backend"))
    }

    /// A sweep larger than one preparation block (8,192 points): every point once, in order,
    /// and a bad value in a later block is the error, naming where it is.
    func testASweepLargerThanOneBlockIsPreparedWholeAndInOrder() throws {
        let repo = try TempRepo.seeded()
        let n = 9_000
        repo.write("big.yaml", "base: sim.yaml\ngrid: {params.n: [\((0..<n).map(String.init).joined(separator: ", "))]}\n")
        repo.write("bad.yaml", "base: sim.yaml\ngrid: {solver.rtol: [\((0..<n).map { $0 == 8_500 ? "-1" : "1e-6" }.joined(separator: ", "))]}\n")
        repo.commitAll("big sweeps")
        let dry = repro(["sweep", "big.yaml", "--dry-run", "--json"], cwd: repo.path)
        XCTAssertEqual(dry.code, 0, dry.err)
        let j = parseJSON(dry.out)
        XCTAssertEqual(j["points"], .int(Int64(n)))
        XCTAssertEqual(j["unique_keys"], .int(Int64(n)))
        let keys = (j["runs"]?.arrayValue ?? []).compactMap { $0["key"]?.stringValue }
        XCTAssertEqual(keys.count, n)
        XCTAssertEqual(Set(keys).count, n)
        // The same order as the points one by one: point 8,999 is params.n = 8999.
        let sweep = try SweepSpec.load(path: repo.path + "/big.yaml")
        let last = try sweep.specs(points: (n - 1)..<n)
        XCTAssertEqual(last.first?.params["n"], .int(Int64(n - 1)))
        let bad = repro(["sweep", "bad.yaml", "--dry-run"], cwd: repo.path)
        XCTAssertEqual(bad.code, 2, bad.err)
        XCTAssertTrue(bad.err.contains("solver.rtol must be finite and >= 0"), bad.err)
    }

    func sweepRepo() throws -> TempRepo {
        let repo = try TempRepo.seeded(
            spec: TempRepo.defaultSpec.replacingOccurrences(of: "[COUNTER_FILE]", with: "[COUNTER_FILE, SIM_SLEEP]"))
        return repo
    }

    func testLocalSweepRunsOnceReportsFailuresAndResumes() throws {
        let repo = try sweepRepo()
        let values = (0..<12).map(String.init) + ["fail-a"]
        repo.write("sweep.yaml", "base: sim.yaml\ngrid: {params.n: [\(values.joined(separator: ", "))], seed: [1, 2]}\n")
        repo.commitAll("sweep")
        let counter = repo.path + "/.git/counter"
        let dry = parseJSON(repro(["sweep", "sweep.yaml", "--dry-run", "--json"], cwd: repo.path).out)
        XCTAssertEqual(dry["points"], .int(26))
        XCTAssertEqual(dry["hits"], .int(0))

        let first = repro(["sweep", "sweep.yaml", "--json", "--jobs", "3"], cwd: repo.path, env: ["COUNTER_FILE": counter])
        XCTAssertEqual(first.code, 1, "a failing point makes the sweep exit 1: \(first.err)")
        let j = parseJSON(first.out)
        XCTAssertEqual(j["points"], .int(26))
        XCTAssertEqual(j["succeeded"], .int(24))
        XCTAssertEqual(j["failed"], .int(2))
        let runs = j["runs"]?.arrayValue ?? []
        XCTAssertEqual(runs.count, 26)
        for f in ["run_id", "key", "cache", "status", "backend", "job_id"] { XCTAssertNotNil(runs.first?[f], f) }
        XCTAssertEqual(try String(contentsOfFile: counter, encoding: .utf8).split(separator: "\n").count, 26)

        // Re-run: the 24 good points are hits; only the failed ones run again.
        let again = parseJSON(repro(["sweep", "sweep.yaml", "--json"], cwd: repo.path, env: ["COUNTER_FILE": counter]).out)
        XCTAssertEqual(again["hits"], .int(24))
        XCTAssertEqual(again["failed"], .int(2))
        XCTAssertEqual(try String(contentsOfFile: counter, encoding: .utf8).split(separator: "\n").count, 28)
        // Outputs of every point are materialized where a single run would put them.
        let key = runs.first { $0["status"] == "succeeded" }?["key"]?.stringValue ?? ""
        XCTAssertNotNil(repo.read("results/seeded/\(key.prefix(12))/result.json"))
    }

    func testFailFastStopsTheSweep() throws {
        let repo = try sweepRepo()
        repo.write("sweep.yaml", "base: sim.yaml\ngrid: {params.n: [fail-first, 1, 2, 3, 4, 5, 6, 7, 8, 9]}\n")
        repo.commitAll("sweep")
        let r = repro(["sweep", "sweep.yaml", "--json", "--jobs", "1", "--fail-fast"], cwd: repo.path, env: ["SIM_SLEEP": "0.1"])
        XCTAssertEqual(r.code, 1)
        let j = parseJSON(r.out)
        XCTAssertEqual(j["failed"], .int(1))
        XCTAssertLessThan(j["succeeded"]?.intValue ?? 99, 9, "fail-fast stopped dispatching")
    }

    func testCtrlCStopsALocalSweepAndARerunResumesWithOnlyTheMissingPoints() throws {
        let repo = try sweepRepo()
        repo.write("sweep.yaml", "base: sim.yaml\ngrid: {params.n: [\((0..<30).map(String.init).joined(separator: ", "))]}\n")
        repo.commitAll("sweep")
        let counter = repo.path + "/.git/counter"
        let p = try launchRepro(["sweep", "sweep.yaml", "--jobs", "2"], cwd: repo.path, env: ["COUNTER_FILE": counter, "SIM_SLEEP": "0.2"])
        let deadline = Date().addingTimeInterval(20)
        while lineCount(counter) < 6 && Date() < deadline { usleep(50_000) }
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 130)
        let store = try Store(root: repo.path + "/.repro")
        XCTAssertEqual(try store.runs(inStatus: .running).count, 0, "nothing left running")
        let doneBefore = try store.runs(inStatus: .succeeded).count
        XCTAssertGreaterThan(doneBefore, 0)
        XCTAssertLessThan(doneBefore, 30)
        // Points that never started are not runs: at most the two running at Ctrl-C are
        // recorded as interrupted, none with 0 ms started at the time of the Ctrl-C.
        let interrupted = try store.runs(inStatus: .interrupted)
        XCTAssertLessThanOrEqual(interrupted.count, 2, interrupted.map { "\($0.message ?? "") \($0.durationS ?? -1)" }.joined(separator: " | "))
        XCTAssertEqual(try store.recentRuns(limit: 100).count, doneBefore + interrupted.count)

        let resume = parseJSON(repro(["sweep", "sweep.yaml", "--json"], cwd: repo.path, env: ["COUNTER_FILE": counter]).out)
        XCTAssertEqual(resume["hits"], .int(Int64(doneBefore)))
        XCTAssertEqual(resume["succeeded"], .int(Int64(30 - doneBefore)))
        let succeeded = try store.runs(inStatus: .succeeded)
        XCTAssertEqual(succeeded.count, 30)
        XCTAssertEqual(Set(succeeded.map(\.key)).count, 30, "no point succeeded twice")
    }
}
