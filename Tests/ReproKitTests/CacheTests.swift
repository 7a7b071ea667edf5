import Foundation
import XCTest

@testable import ReproKit
@testable import ReproSupport
@testable import ReproStore

/// Expiry, invalidation, gc and `repro why`, on real stores.
final class CacheTests: XCTestCase {
    func testWhyNamesTheChangeAndTheHit() throws {
        let repo = try TempRepo.seeded()
        let first = repro(["run", "sim.yaml", "--json"], cwd: repo.path)
        let runId = parseJSON(first.out)["run_id"]?.stringValue ?? ""
        let hit = parseJSON(repro(["why", "sim.yaml", "--json"], cwd: repo.path).out)
        XCTAssertEqual(hit["verdict"], "hit")
        XCTAssertEqual(hit["hit_run"], .string(runId))

        let miss = parseJSON(repro(["why", "sim.yaml", "--set", "solver.rtol=1e-8", "--json"], cwd: repo.path).out)
        XCTAssertEqual(miss["verdict"], "miss")
        XCTAssertEqual(miss["compared_run"], .string(runId))
        let d = miss["differences"]?.arrayValue ?? []
        XCTAssertEqual(d.count, 1, "\(d)")
        XCTAssertEqual(d.first?["field"], "solver.rtol")
        XCTAssertEqual(d.first?["old"], .double(1e-6))
        XCTAssertEqual(d.first?["new"], .double(1e-8))

        // An input and a code change, both named; repro run prints the one-line version.
        repo.write("data/dose.csv", "t,dose\n0,9.0\n")
        repo.write("sim/seeded.sh", (repo.read("sim/seeded.sh") ?? "") + "# v2\n", executable: true)
        repo.commitAll("v2")
        let both = parseJSON(repro(["why", "sim.yaml", "--json"], cwd: repo.path).out)
        let fields = (both["differences"]?.arrayValue ?? []).compactMap { $0["field"]?.stringValue }
        XCTAssertEqual(fields, ["sim", "input data/dose.csv"])
        let run = repro(["run", "sim.yaml"], cwd: repo.path)
        XCTAssertTrue(run.err.contains("miss: sim "), run.err)
        // The reason is worked out while the task runs; the outcome carries it all the same.
        let json = parseJSON(repro(["run", "sim.yaml", "--set", "seed=77", "--json"], cwd: repo.path).out)
        XCTAssertEqual(json["cache"], "miss")
        XCTAssertTrue(json["miss_reason"]?.stringValue?.contains("seed") ?? false, "\(json)")
    }

    /// A run that fails still says why it had to run, and the next one says why the failed
    /// run is not served.
    func testAFailingMissSaysWhy() throws {
        let repo = try TempRepo()
        repo.write("fail.yaml", "name: failing\ncommand: [sh, -c, 'exit 3']\nseed: 1\n")
        repo.commitAll("failing")
        let first = repro(["run", "fail.yaml"], cwd: repo.path)
        XCTAssertNotEqual(first.code, 0, first.err)
        let second = repro(["run", "fail.yaml"], cwd: repo.path)
        XCTAssertNotEqual(second.code, 0, second.err)
        XCTAssertTrue(second.err.contains("has this key but failed; only succeeded runs are served"), second.err)
    }

    func testExpiredEntriesAreNotServed() throws {
        let repo = try TempRepo.seeded()
        XCTAssertEqual(repro(["run", "sim.yaml"], cwd: repo.path).code, 0)
        repo.write(".repro/config.yaml", "cache:\n  max_age: 1d\n")
        // Two days old, as the store records it: no waiting for a clock to pass.
        let aged = sh(["sqlite3", repo.path + "/.repro/store.sqlite",
            "UPDATE runs SET started_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 days'), finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 days')"], cwd: "/")
        XCTAssertEqual(aged.code, 0, aged.err)
        let st = parseJSON(repro(["cache", "status", "--json"], cwd: repo.path).out)
        XCTAssertEqual(st["expired"], .int(1))
        let why = repro(["why", "sim.yaml"], cwd: repo.path)
        XCTAssertTrue(why.out.contains("older than cache.max_age"), why.out)
        let again = parseJSON(repro(["run", "sim.yaml", "--json"], cwd: repo.path).out)
        XCTAssertEqual(again["cache"], "miss")
        // A bad store config is a config error.
        repo.write(".repro/config.yaml", "cache:\n  max_age: forever\n")
        let bad = repro(["run", "sim.yaml"], cwd: repo.path)
        XCTAssertEqual(bad.code, 2)
        XCTAssertTrue(bad.err.contains("config.yaml:2"), bad.err)
    }

    func testInvalidateByKeyForcesARerun() throws {
        let repo = try TempRepo.seeded()
        let key = parseJSON(repro(["run", "sim.yaml", "--json"], cwd: repo.path).out)["key"]?.stringValue ?? ""
        let inv = repro(["cache", "invalidate", "--key", String(key.prefix(10)), "--reason", "compiler upgrade"], cwd: repo.path)
        XCTAssertEqual(inv.out, "invalidated 1 entry\n", inv.err)
        let again = parseJSON(repro(["run", "sim.yaml", "--json"], cwd: repo.path).out)
        XCTAssertEqual(again["cache"], "miss")
        XCTAssertEqual(again["key"], .string(key))
        XCTAssertEqual(repro(["cache", "invalidate"], cwd: repo.path).code, 2, "a selection is required")
        XCTAssertEqual(repro(["cache", "invalidate", "--config", "sim.yaml"], cwd: repo.path).out, "invalidated 1 entry\n")
    }

    func testGCEvictsOutputsKeepsRecordsAndFreesBlobs() throws {
        let repo = try TempRepo.seeded()
        let first = parseJSON(repro(["run", "sim.yaml", "--json"], cwd: repo.path).out)
        repo.write("sim/seeded.sh", (repo.read("sim/seeded.sh") ?? "") + "# v2\n", executable: true)
        repo.commitAll("v2")
        XCTAssertEqual(repro(["run", "sim.yaml", "--set", "params.n=99"], cwd: repo.path).code, 0)
        let store = try Store(root: repo.path + "/.repro")
        let blobsBefore = try store.blobCount()

        let dry = parseJSON(repro(["cache", "gc", "--stale", "--dry-run", "--json"], cwd: repo.path).out)
        XCTAssertEqual(dry["entries_evicted"], .int(1))
        XCTAssertEqual(try store.blobCount(), blobsBefore, "a dry run changes nothing")

        let gc = parseJSON(repro(["cache", "gc", "--stale", "--json"], cwd: repo.path).out)
        XCTAssertEqual(gc["entries_evicted"], .int(1))
        XCTAssertGreaterThan(gc["blobs_removed"]?.intValue ?? 0, 0)
        XCTAssertGreaterThan(gc["bytes_freed"]?.intValue ?? 0, 0)
        XCTAssertLessThan(try store.blobCount(), blobsBefore)
        for o in first["outputs"]?.arrayValue ?? [] {
            XCTAssertFalse(store.hasBlob(o["sha256"]?.stringValue ?? ""), "evicted output blob still on disk")
        }
        // The record stays; show says the outputs are gone; stdout is still there.
        let id = first["run_id"]?.stringValue ?? ""
        let show = repro(["show", id, "--json"], cwd: repo.path)
        XCTAssertEqual(show.code, 0, show.err)
        XCTAssertNotEqual(parseJSON(show.out)["outputs_evicted_at"], .null)
        XCTAssertTrue(repro(["show", id], cwd: repo.path).out.contains("evicted"))
        XCTAssertTrue(store.hasBlob(parseJSON(show.out)["stdout_blob"]?.stringValue ?? ""))
        XCTAssertEqual(try store.integrityCheck(), ["ok"])
        // Checking out the old code makes the entry current, but its outputs are gone: it re-runs.
        repo.git("checkout", "-q", "HEAD~1")
        XCTAssertEqual(parseJSON(repro(["run", "sim.yaml", "--json"], cwd: repo.path).out)["cache"], "miss")
    }

    /// Both ways of looking up a sweep's hits (keys handed to SQLite, or every servable row
    /// matched in memory when there are more keys than runs) give the same answer.
    func testServableHitsAreTheSameWhateverTheNumberOfKeys() throws {
        let repo = try TempRepo.seeded()
        let oldest = try runSpec(repo)
        agedRun(repo, oldest.record.runId)
        // The same key computed again: the newer run answers, with its own outputs.
        let first = try runSpec(repo, noCache: true)
        let second = try runSpec(repo, set: ["params.n=2"])
        _ = try runSpec(repo, set: ["params.n=3"])  // servable, but not asked for
        let store = try Store(root: repo.path + "/.repro")
        XCTAssertEqual(try store.runs(forKey: first.record.key).filter { $0.status == .succeeded }.count, 2)
        XCTAssertGreaterThan(first.record.outputs.count, 1, "the seeded simulation writes several outputs")
        XCTAssertEqual(try store.invalidate(.key(second.record.key), reason: "test"), 1)
        let few = try store.servableHits(forKeys: [first.record.key, second.record.key], maxAge: 86400)
        let many = try store.servableHits(
            forKeys: [first.record.key, second.record.key] + (0..<1500).map { Hashing.sha256Hex("other-\($0)") }, maxAge: 86400)
        for found in [few, many] {
            XCTAssertEqual(Array(found.keys), [first.record.key])
            XCTAssertEqual(found[first.record.key]?.runId, first.record.runId)
            XCTAssertEqual(found[first.record.key]?.outputs, first.record.outputs)
        }
    }

    /// Why a miss missed asks for the newest run of its key and of its name, succeeded ones
    /// first: answered from an index in one probe (each miss used to read and sort every run of
    /// the key: 100 rows for a key computed 100 times, 10,000 for a sweep's name).
    func testNewestRunOfAKeyAndOfANameComeFromAnIndex() throws {
        let repo = try TempRepo.seeded()
        let older = try runSpec(repo)
        agedRun(repo, older.record.runId)
        let newer = try runSpec(repo, noCache: true)
        let db = repo.path + "/.repro/store.sqlite"
        // A later failed run of the same key and name: the succeeded one still answers.
        let copy = sh(
            ["sqlite3", db,
             """
             CREATE TEMP TABLE t AS SELECT * FROM runs WHERE run_id = '\(newer.record.runId)';
             UPDATE t SET run_id = 'failed-later', status = 'failed', started_at = '2999-01-01T00:00:00.000Z';
             INSERT INTO runs SELECT * FROM t;
             """], cwd: "/")
        XCTAssertEqual(copy.code, 0, copy.err)
        let store = try Store(root: repo.path + "/.repro")
        XCTAssertEqual(try store.runs(forKey: newer.record.key, limit: 1).map(\.runId), [newer.record.runId])
        XCTAssertEqual(try store.runs(forKey: newer.record.key).map(\.runId), [newer.record.runId, older.record.runId, "failed-later"])
        XCTAssertEqual(try store.newestRun(named: newer.record.name)?.runId, newer.record.runId)
        XCTAssertEqual(try store.runs(forKey: newer.record.key, limit: 1, excluding: newer.record.runId).map(\.runId), [older.record.runId])
        for clause in [Store.runsOfKeyClause, Store.otherRunsOfKeyClause, Store.newestOfNameClause] {
            let sql = "EXPLAIN QUERY PLAN SELECT run_id FROM runs WHERE " + clause.replacingOccurrences(of: "?", with: "'x'")
            let plan = sh(["sqlite3", db, sql], cwd: "/")
            XCTAssertEqual(plan.code, 0, plan.err)
            XCTAssertTrue(plan.out.contains("_newest"), plan.out)
            XCTAssertFalse(plan.out.contains("TEMP B-TREE"), plan.out)
        }
        // `why`'s nearest-identity candidates are found through an index, not a scan of the runs.
        for clause in [Store.newestOfConfigClause, Store.newestOfCodeClause] {
            let plan = sh(["sqlite3", db, "EXPLAIN QUERY PLAN SELECT run_id FROM runs WHERE " + clause.replacingOccurrences(of: "?", with: "'x'")], cwd: "/")
            XCTAssertEqual(plan.code, 0, plan.err)
            XCTAssertTrue(plan.out.contains("USING INDEX") || plan.out.contains("USING COVERING INDEX"), plan.out)
            XCTAssertFalse(plan.out.contains("SCAN runs"), plan.out)
        }
    }

    /// Moves a run an hour into the past, so "newer" needs no sleep between two runs.
    func agedRun(_ repo: TempRepo, _ runId: String) {
        let sql = """
            UPDATE runs SET queued_at = strftime('%Y-%m-%dT%H:%M:%fZ', queued_at, '-1 hour'),
              started_at = strftime('%Y-%m-%dT%H:%M:%fZ', started_at, '-1 hour'),
              finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', finished_at, '-1 hour') WHERE run_id = '\(runId)'
            """
        let r = sh(["sqlite3", repo.path + "/.repro/store.sqlite", sql], cwd: "/")
        XCTAssertEqual(r.code, 0, r.err)
    }
}
