import Foundation
import ReproSupport

extension Store {
    /// Records which run's output repro wrote at each path (absolute), for audit and lineage.
    package func recordMaterializations(_ items: [(path: String, sha256: String, runId: String)]) throws(StoreError) {
        guard !items.isEmpty else { return }
        try db.transaction { () throws(StoreError) in try insertMaterializations(items) }
    }

    /// The rows of `recordMaterializations`, inside the caller's transaction.
    func insertMaterializations(_ items: [(path: String, sha256: String, runId: String)]) throws(StoreError) {
        guard !items.isEmpty else { return }
        let stmt = try db.prepare(
            "INSERT INTO materializations (path, sha256, run_id, at) VALUES (?, ?, ?, ?) "
                + "ON CONFLICT (path) DO UPDATE SET sha256 = excluded.sha256, run_id = excluded.run_id, at = excluded.at")
        let now = Clock.iso8601(Clock.now())
        for i in items { try stmt.run([.text(FileIO.realPath(i.path)), .text(i.sha256), .text(i.runId), .text(now)]) }
    }

    /// What repro last wrote at `path`: the run and the content hash, or nil.
    package func materialization(atPath path: String) throws(StoreError) -> (runId: String, sha256: String)? {
        let real = FileIO.realPath(path)
        let stmt = try db.prepare("SELECT run_id, sha256 FROM materializations WHERE path = ?")
        for p in Set([path, real]) {
            let rows = try stmt.query([.text(p)]) { (runId: $0.text(0), sha256: $0.text(1)) }
            if let row = rows.first { return row }
        }
        return nil
    }

    /// Runs with an output whose content has this hash, with that output's name; newest first.
    package func runsProducing(sha256: String) throws -> [(RunRecord, String)] {
        let rows = try db.prepare(
            "SELECT o.run_id, o.name FROM outputs o JOIN runs r USING (run_id) WHERE o.sha256 = ? ORDER BY r.dirty, r.started_at DESC"
        ).query([.text(sha256)]) { ($0.text(0), $0.text(1)) }
        var out: [(RunRecord, String)] = []
        for (id, name) in rows {
            if let r = try fetchRuns(where: "run_id = ?", [.text(id)]).first { out.append((r, name)) }
        }
        return out
    }

    /// Outputs whose name ends with this file name, newest first (to explain an edited copy).
    package func outputsNamed(_ fileName: String) throws -> [(runId: String, name: String, sha256: String)] {
        try db.prepare(
            """
            SELECT o.run_id, o.name, o.sha256 FROM outputs o JOIN runs r USING (run_id)
            WHERE o.name = ? OR o.name LIKE ? ORDER BY r.started_at DESC LIMIT 20
            """
        ).query([.text(fileName), .text("%/" + fileName)]) { (runId: $0.text(0), name: $0.text(1), sha256: $0.text(2)) }
    }
}
