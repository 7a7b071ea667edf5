import Foundation
import XCTest

@testable import ReproKit
@testable import ReproSupport
@testable import ReproStore

/// Any input of a few KB costs little: limits end in a config error (exit 2) naming the limit,
/// never in a crash, a hang or an allocation that takes the machine down.
final class BoundedInputTests: XCTestCase {
    func testAliasBombIsRefusedAndPlainAliasesStillWork() throws {
        let repo = try TempRepo.seeded()
        var bomb = "name: bomb\ncommand: [sim/seeded.sh]\nparams:\n  a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
        let names = Array("abcdefghi")
        for i in 1..<names.count {
            bomb += "  \(names[i]): &\(names[i]) [" + Array(repeating: "*\(names[i - 1])", count: 9).joined(separator: ",") + "]\n"
        }
        repo.write("bomb.yaml", bomb)
        let r = repro(["why", "bomb.yaml"], cwd: repo.path)
        XCTAssertEqual(r.code, 2, r.err)
        XCTAssertTrue(r.err.contains("more than 100000 values"), r.err)
        // A plain alias is expanded like the value it names.
        let spec = try SpecLoader.parse(
            text: "name: al\ncommand: [x]\nparams:\n  base: &b {k: 1, m: [1, 2]}\n  copy: *b\n", file: "al.yaml")
        XCTAssertEqual(spec.params["copy"], spec.params["base"])
        XCTAssertEqual(spec.params["copy"]?["k"], .int(1))
    }

    func testDeeplyNestedParamsAreRefusedNotFlattened() throws {
        let deep = String(repeating: "{a: ", count: 600) + "1" + String(repeating: "}", count: 600)
        XCTAssertThrowsError(try SpecLoader.parse(text: "name: d\ncommand: [x]\nparams: \(deep)\n", file: "d.yaml")) { e in
            XCTAssertEqual((e as? ReproError)?.exitCode, 2)
            XCTAssertTrue("\(e)".contains("nested more than 64 levels"), "\(e)")
        }
        let ok = String(repeating: "{a: ", count: 50) + "1" + String(repeating: "}", count: 50)
        let a = try SpecLoader.parse(text: "name: d\ncommand: [x]\nparams: \(ok)\n", file: "d.yaml")
        let b = try SpecLoader.parse(text: "name: d\ncommand: [x]\nparams: \(ok.replacingOccurrences(of: "1}", with: "2}"))\n", file: "d.yaml")
        XCTAssertNotEqual(a.configHash, b.configHash, "two different nested specs, two identities")
    }

    func testHugeSweepsAreRefusedBeforeExpanding() throws {
        let repo = try TempRepo.seeded()
        repo.write("reps.yaml", "base: sim.yaml\nreplicates: 1000000000000\n")
        let axes = (0..<10).map { "  params.p\($0): [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]" }.joined(separator: "\n")
        repo.write("grid.yaml", "base: sim.yaml\ngrid:\n\(axes)\n")
        for file in ["reps.yaml", "grid.yaml"] {
            let r = repro(["sweep", file, "--dry-run"], cwd: repo.path)
            XCTAssertEqual(r.code, 2, "\(file): \(r.err)")
            XCTAssertTrue(r.err.contains("1000000 runs"), r.err)
            XCTAssertFalse(r.err.contains("Fatal error") || r.err.contains("Stack dump"), r.err)
        }
    }

    /// A huge result.json and huge stderr are streamed: repro's memory stays small (it once
    /// read both whole). 200 MiB each keeps the test quick; 1.1 GiB each measured 38 MB.
    func testHugeResultAndStderrAreStreamed() throws {
        let repo = try TempRepo()
        repo.write(
            "sim.sh",
            """
            #!/bin/sh
            { printf '{"a": "'; head -c 200M /dev/zero | tr '\\0' 'x'; printf '"}'; } > "$REPRO_OUTDIR/result.json"
            head -c 200M /dev/zero | tr '\\0' 'e' >&2
            exit 3

            """, executable: true)
        repo.write("sim.yaml", "name: big\ncommand: [./sim.sh]\ncode: [sim.sh]\n")
        repo.commitAll()
        let r = sh(["/usr/bin/time", "-f", "maxrss=%M", TestPaths.repro, "run", "sim.yaml"], cwd: repo.path)
        XCTAssertEqual(r.code, 1, "the simulation failed (exit 3): \(r.err.suffix(300))")
        let rss = r.err.components(separatedBy: "maxrss=").last.flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? Int.max
        XCTAssertLessThan(rss, 150_000, "repro used \(rss) KB for 400 MiB of output")
        XCTAssertTrue(r.err.contains("eeee"), "the failure still shows the tail of stderr")
        let store = try Store(root: repo.path + "/.repro")
        let run = try XCTUnwrap(try store.recentRuns(limit: 1).first)
        XCTAssertEqual(run.status, .failed)
        XCTAssertEqual(run.outputs.first?.size, 200 * 1024 * 1024 + 9)
    }
}
