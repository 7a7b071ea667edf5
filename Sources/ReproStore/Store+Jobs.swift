import Foundation
import ReproSupport

/// What the store keeps of runs handed to a backend: where they are, what to resubmit them
/// with, and which never started.
extension Store {
    /// Records where a submitted run's files are and the scheduler's id for it.
    package func setJobs(_ items: [(runId: String, jobId: String?, taskRef: String, attempt: Int)]) throws(StoreError) {
        try db.transaction { () throws(StoreError) in
            let stmt = try db.prepare("UPDATE runs SET job_id = ?, task_ref = ?, attempts = ? WHERE run_id = ?")
            for i in items {
                try stmt.run([i.jobId.map { .text($0) } ?? .null, .text(i.taskRef), .int(Int64(i.attempt)), .text(i.runId)])
            }
        }
    }

    /// The resources recorded for a run (for resubmission).
    package func resourcesFor(runId: String) -> [String: JSONValue]? {
        (try? run(id: runId))?.resources.objectValue
    }

    /// Removes the `running` records of tasks that never started (a sweep's queued points at
    /// Ctrl-C): a point that never ran is not a run.
    package func discardUnstarted(runIds: [String]) throws(StoreError) {
        guard !runIds.isEmpty else { return }
        try db.prepare("DELETE FROM runs WHERE run_id IN (SELECT value FROM json_each(?)) AND status = 'running'")
            .run([.text(JSONValue.array(runIds.map { .string($0) }).canonical)])
    }
}
