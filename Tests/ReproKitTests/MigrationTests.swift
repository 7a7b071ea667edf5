import Foundation
import XCTest

@testable import ReproKit
@testable import ReproStore

extension Store {
    /// Undoes the schema changes after migration 6, newest first.
    static let laterColumnsDowngrade = """
        ALTER TABLE runs DROP COLUMN submitter_json;
        DROP INDEX runs_by_key_newest;
        DROP INDEX runs_by_name_newest;
        DROP INDEX runs_durations;
        DROP INDEX runs_servable;
        ALTER TABLE runs DROP COLUMN estimate_json;
        ALTER TABLE runs DROP COLUMN routing_json;
        ALTER TABLE runs DROP COLUMN attempts_json;
        ALTER TABLE runs DROP COLUMN fallback_json;
        ALTER TABLE runs DROP COLUMN cost;
        ALTER TABLE runs DROP COLUMN cost_estimate;
        ALTER TABLE runs DROP COLUMN origin_json;
        CREATE TABLE hits (run_id TEXT NOT NULL REFERENCES runs (run_id), at TEXT NOT NULL);
        CREATE INDEX hits_by_run ON hits (run_id);
        INSERT INTO hits (run_id, at)
            WITH RECURSIVE n(run_id, day, i) AS (SELECT run_id, day, count FROM hit_days UNION ALL SELECT run_id, day, i - 1 FROM n WHERE i > 1)
            SELECT run_id, day || 'T12:00:00.000Z' FROM n;
        DROP TABLE hit_days;

        """
}

/// Stores made by an earlier release open with this one, keeping what their runs recorded.
final class MigrationTests: XCTestCase {
    func testAStoreOfThePreviousSchemaOpensAndKeepsItsTaskDirectories() throws {
        let repo = try TempRepo.seeded()
        // A run on the slurm backend, recorded by this release, then the store taken back to
        // schema 5 (the previous release) the way that release wrote it: task_dir, no type.
        let r = repro(["run", "sim.yaml", "--json"], cwd: repo.path)
        XCTAssertEqual(r.code, 0, r.err)
        let runId = parseJSON(r.out)["run_id"]?.stringValue ?? ""
        // Two hits, kept as two rows of `hits` by that release (migration 9 counts them per day).
        for _ in 0..<2 { XCTAssertEqual(repro(["run", "sim.yaml"], cwd: repo.path).code, 0) }
        let db = repo.path + "/.repro/store.sqlite"
        // Later migrations' columns go first (each release adds its own lines here).
        let downgrade = Store.laterColumnsDowngrade + """
            ALTER TABLE runs RENAME COLUMN task_ref TO task_dir;
            ALTER TABLE runs DROP COLUMN backend_type;
            UPDATE runs SET task_dir = '/shared/tasks/run-\(runId)', backend = 'slurm', job_id = '42_3', attempts = 1;
            DELETE FROM schema_migrations WHERE version >= 6;
            """
        let d = sh(["sqlite3", db, downgrade], cwd: "/")
        XCTAssertEqual(d.code, 0, d.err)
        XCTAssertEqual(sh(["sqlite3", db, "SELECT max(version) FROM schema_migrations"], cwd: "/").out.trimmingCharacters(in: .whitespacesAndNewlines), "5")

        let store = try Store(root: repo.path + "/.repro")
        let run = try XCTUnwrap(try store.run(id: runId))
        XCTAssertEqual(run.taskRef, "/shared/tasks/run-\(runId)")
        XCTAssertNil(run.backendType)
        XCTAssertEqual(run.resubmissions, 1)
        XCTAssertEqual(run.jobId, "42_3")
        XCTAssertEqual(run.status, .succeeded)
        XCTAssertEqual(run.hitCount, 2)
        XCTAssertEqual(try store.hitsPerDay(runIds: [runId]).values.reduce(0, +), 2)
        XCTAssertEqual(
            sh(["sqlite3", db, "SELECT max(version) FROM schema_migrations"], cwd: "/").out.trimmingCharacters(in: .whitespacesAndNewlines),
            String(Store.migrations.last?.version ?? 0))
        // And the CLI still serves it.
        XCTAssertEqual(repro(["run", "sim.yaml"], cwd: repo.path).code, 0)
    }
}
