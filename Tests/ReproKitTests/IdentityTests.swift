import Foundation
import XCTest

@testable import ReproKit
@testable import ReproSupport
@testable import ReproStore

/// Cache identity against real git repositories and real SQLite stores.
final class IdentityTests: XCTestCase {
    func testMissThenHitWithSameKey() throws {
        let repo = try TempRepo.seeded()
        let counter = repo.path + "/../counter-\(UUID().uuidString.prefix(6))"
        let first = try runSpec(repo, env: ["COUNTER_FILE": counter])
        XCTAssertEqual(first.cache, .miss)
        XCTAssertEqual(first.record.status, .succeeded)
        XCTAssertEqual(first.record.seed, 42)
        XCTAssertEqual(first.record.outputs.map(\.name), ["result.json", "traj/0.csv", "traj/1.csv", "traj/2.csv"])
        let second = try runSpec(repo, env: ["COUNTER_FILE": counter])
        XCTAssertEqual(second.cache, .hit)
        XCTAssertEqual(second.record.key, first.record.key)
        XCTAssertEqual(second.record.runId, first.record.runId)
        // It really ran once, and the hit materialized the same bytes.
        XCTAssertEqual(try String(contentsOfFile: counter, encoding: .utf8).split(separator: "\n").count, 1)
        let out = try String(contentsOfFile: second.outputPaths["result.json"] ?? "", encoding: .utf8)
        XCTAssertEqual(out, "{\"seed\": 42, \"rtol\": \"0.000001\", \"n\": 10}\n")
        XCTAssertTrue(second.outputsDir?.hasSuffix("/results/seeded/" + first.record.key.prefix(12)) ?? false)
        // The store and results never make the work tree dirty.
        XCTAssertEqual(repo.git("status", "--porcelain"), "")
    }

    func testReorderedKeysAndEquivalentNumbersHit() throws {
        let repo = try TempRepo.seeded()
        let first = try runSpec(repo)
        repo.write(
            "other.yaml",
            """
            # same spec, other order, other number spelling, flow vs block style
            solver:
              atol: 0.000000001
              rtol: 0.000001
            seed: 42
            params:
              label: "demo"
              n: 10
            outputs: ["result.json", traj/*.csv]
            inputs: [./data/dose.csv]
            code: [sim]
            command: [sim/seeded.sh, "{params.n}"]
            env_passthrough: [COUNTER_FILE]
            name: seeded
            """)
        let second = try runSpec(repo, spec: "other.yaml", allowDirty: false)
        XCTAssertEqual(second.record.key, first.record.key)
        XCTAssertEqual(second.cache, .hit)
    }

    func testChangesThatMustMiss() throws {
        let repo = try TempRepo.seeded()
        let base = try runSpec(repo).record.key
        let rtol = try runSpec(repo, set: ["solver.rtol=1e-8"])
        XCTAssertEqual(rtol.cache, .miss)
        XCTAssertNotEqual(rtol.record.key, base)
        XCTAssertEqual(rtol.record.solver["rtol"], .double(1e-8))
        let seed = try runSpec(repo, set: ["seed=7"])
        XCTAssertEqual(seed.cache, .miss)
        XCTAssertEqual(seed.record.seed, 7)
        let param = try runSpec(repo, set: ["params.n=2000"])
        XCTAssertEqual(param.cache, .miss)
        XCTAssertEqual(param.record.command, ["sim/seeded.sh", "2000"])
        // An input's content changes (not committed: inputs need not be in git).
        repo.write("data/dose.csv", "t,dose\n0,4.0\n")
        repo.git("commit", "-qam", "new dose")
        let input = try runSpec(repo)
        XCTAssertEqual(input.cache, .miss)
        XCTAssertNotEqual(input.record.key, base)
        // A committed change to a code path.
        let again = try runSpec(repo)
        XCTAssertEqual(again.cache, .hit)
        repo.write("sim/seeded.sh", (repo.read("sim/seeded.sh") ?? "") + "# tweak\n", executable: true)
        repo.commitAll("tweak the model")
        let code = try runSpec(repo)
        XCTAssertEqual(code.cache, .miss)
        XCTAssertNotEqual(code.record.key, again.record.key)
    }

    func testCommitOutsideCodePathsStillHits() throws {
        let repo = try TempRepo.seeded()
        let first = try runSpec(repo)
        repo.write("README.md", "more notes\n")
        repo.commitAll("docs only")
        let second = try runSpec(repo)
        XCTAssertEqual(second.cache, .hit)
        XCTAssertEqual(second.record.key, first.record.key)
        XCTAssertNotEqual(repo.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines), first.record.commit)
    }

    func testDirtyCodeIsRefusedUnlessAllowed() throws {
        let repo = try TempRepo.seeded()
        let clean = try runSpec(repo)
        repo.write("sim/seeded.sh", (repo.read("sim/seeded.sh") ?? "") + "# local edit\n", executable: true)
        repo.write("sim/new_helper.py", "print('hi')\n")
        XCTAssertThrowsError(try runSpec(repo)) { error in
            let e = error as? ReproError
            XCTAssertEqual(e?.exitCode, 2)
            XCTAssertTrue(e?.description.contains("sim/seeded.sh") ?? false, "\(error)")
            XCTAssertTrue(e?.description.contains("sim/new_helper.py") ?? false, "\(error)")
            XCTAssertTrue(e?.description.contains("--allow-dirty") ?? false)
        }
        let dirty = try runSpec(repo, allowDirty: true)
        XCTAssertEqual(dirty.cache, .miss)
        XCTAssertTrue(dirty.record.dirty)
        XCTAssertNotEqual(dirty.record.key, clean.record.key)
        XCTAssertEqual(dirty.record.dirtyFiles, ["sim/new_helper.py", "sim/seeded.sh"])
        // The patch is in the store and holds both the edit and the untracked file.
        let store = try Store(root: repo.path + "/.repro")
        let patch = String(decoding: try store.readBlob(dirty.record.patchBlob ?? ""), as: UTF8.self)
        XCTAssertTrue(patch.contains("+# local edit"), patch)
        XCTAssertTrue(patch.contains("+print('hi')"), patch)
        // Same dirty state again: a hit on the dirty key.
        XCTAssertEqual(try runSpec(repo, allowDirty: true).cache, .hit)
        // Dirt outside the code paths does not matter.
        repo.git("checkout", "--", "sim/seeded.sh")
        try FileManager.default.removeItem(atPath: repo.path + "/sim/new_helper.py")
        repo.write("README.md", "edited but not committed\n")
        XCTAssertEqual(try runSpec(repo).cache, .hit)
    }

    func testNoCacheRunsAgainAndBothAreRecorded() throws {
        let repo = try TempRepo.seeded()
        let a = try runSpec(repo)
        let b = try runSpec(repo, noCache: true)
        XCTAssertEqual(b.cache, .miss)
        XCTAssertEqual(a.record.key, b.record.key)
        XCTAssertNotEqual(a.record.runId, b.record.runId)
        XCTAssertEqual(try Store(root: repo.path + "/.repro").recentRuns(limit: 10).count, 2)
    }

    func testAutoSeedIsDerivedFromConfigHash() throws {
        let repo = try TempRepo.seeded(spec: TempRepo.defaultSpec.replacingOccurrences(of: "seed: 42\n", with: ""))
        let r = try runSpec(repo)
        XCTAssertEqual(r.record.seed, Hashing.seed(fromHex: r.record.configHash))
        XCTAssertTrue((0...Int64(Int32.max)).contains(r.record.seed))
    }

    func testSubdirectoryCodePathIdentityIsTheGitTreeId() throws {
        let repo = try TempRepo.seeded()
        let r = try runSpec(repo)
        let tree = repo.git("rev-parse", "HEAD:sim").trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(r.record.code.paths.first?.id, tree)
    }
}
