import Foundation
import ReproSupport

extension Store {
    /// How long each succeeded run of a spec name took, by config: from the durations index
    /// alone (the planner, without statistics, would walk every succeeded run of the store).
    package func durations(named name: String) throws(StoreError) -> [(configHash: String, duration: Double)] {
        try db.prepare(
            "SELECT config_hash, duration_s FROM runs INDEXED BY runs_durations WHERE name = ? AND status = 'succeeded' AND duration_s IS NOT NULL"
        ).query([.text(name)]) { (configHash: $0.text(0), duration: $0.double(1)) }
    }

    /// The durations of one config's succeeded runs (the same index, one range of it).
    package func durations(named name: String, configHash: String) throws(StoreError) -> [Double] {
        try db.prepare(
            """
            SELECT duration_s FROM runs INDEXED BY runs_durations
            WHERE name = ? AND config_hash = ? AND status = 'succeeded' AND duration_s IS NOT NULL
            """
        ).query([.text(name), .text(configHash)]) { $0.double(0) }
    }

    /// The same runs with their configs (what an estimate scaled by a param reads).
    package func durationsWithConfigs(named name: String) throws(StoreError) -> [(duration: Double, config: String)] {
        try db.prepare(
            "SELECT duration_s, config_json FROM runs INDEXED BY runs_by_name WHERE name = ? AND status = 'succeeded' AND duration_s IS NOT NULL"
        ).query([.text(name)]) { (duration: $0.double(0), config: $0.text(1)) }
    }

    /// What runs finished since `t` (epoch seconds) cost, every attempt included.
    package func costSince(_ t: Double) throws(StoreError) -> Double {
        try db.prepare("SELECT COALESCE(sum(cost), 0) FROM runs WHERE cost IS NOT NULL AND COALESCE(finished_at, started_at) >= ?")
            .query([.text(Clock.iso8601(t))]) { $0.double(0) }.first ?? 0
    }

    /// Costs summed by backend or spec name since `t`: (group, runs, seconds, cost, unpriced runs).
    package func costSummary(since t: Double?, by column: String) throws(StoreError) -> [(group: String, runs: Int, seconds: Double, cost: Double, unpriced: Int)] {
        guard column == "backend" || column == "name" else { throw StoreError("cost can be grouped by backend or name") }
        let since = t.map { Clock.iso8601($0) } ?? ""
        return try db.prepare(
            """
            SELECT \(column), count(*), COALESCE(sum(duration_s), 0), COALESCE(sum(cost), 0), sum(cost IS NULL)
            FROM runs WHERE status != 'running' AND COALESCE(finished_at, started_at) >= ? GROUP BY \(column) ORDER BY 4 DESC, 1
            """
        ).query([.text(since)]) { (group: $0.text(0), runs: Int($0.int(1)), seconds: $0.double(2), cost: $0.double(3), unpriced: Int($0.int(4))) }
    }

    /// Finished runs with no recorded cost since `t` (they ran where no price was set then):
    /// group, backend, duration, resources, for pricing with today's table.
    package func unpricedRuns(since t: Double?, by column: String) throws(StoreError)
        -> [(group: String, backend: String, seconds: Double, resources: [String: JSONValue])]
    {
        guard column == "backend" || column == "name" else { throw StoreError("cost can be grouped by backend or name") }
        return try db.prepare(
            """
            SELECT \(column), backend, COALESCE(duration_s, 0), resources_json FROM runs
            WHERE status != 'running' AND cost IS NULL AND COALESCE(finished_at, started_at) >= ?
            """
        ).query([.text(t.map { Clock.iso8601($0) } ?? "")]) {
            (group: $0.text(0), backend: $0.text(1), seconds: $0.double(2),
             resources: (try? JSONParser.parse($0.text(3)))?.objectValue ?? [:])
        }
    }

    /// Appends a failed attempt (a backend failure) to a run's record, with its cost.
    package func addAttempt(runId: String, _ attempt: Attempt, cost: Double?) throws(StoreError) {
        try db.prepare(
            """
            UPDATE runs SET attempts_json = json_insert(COALESCE(attempts_json, '[]'), '$[#]', json(?)),
              cost = CASE WHEN ? IS NULL THEN cost ELSE COALESCE(cost, 0) + ? END WHERE run_id = ?
            """
        ).run([.text(attempt.json.canonical), cost.map { .double($0) } ?? .null, cost.map { .double($0) } ?? .null, .text(runId)])
    }
}

extension Store {
    /// Hands a run that its backend failed to another backend (a fallback): the record takes
    /// the new task's backend, command, environment and folder, is `running` again, and keeps
    /// its attempts (and their cost). Outputs a failed attempt may have recorded are dropped.
    package func reassign(_ r: RunRecord, fallback: Fallback) throws(StoreError) {
        try db.transaction { () throws(StoreError) in
            try db.prepare("DELETE FROM outputs WHERE run_id = ?").run([.text(r.runId)])
            try db.prepare(
                """
                UPDATE runs SET status = 'running', exit_code = NULL, message = NULL, finished_at = NULL, duration_s = NULL,
                  stdout_blob = NULL, stderr_blob = NULL, backend = ?, backend_type = ?, command_json = ?, env_json = ?,
                  executable_path = ?, executable_sha256 = NULL, task_ref = ?, job_id = NULL, host = ?, os = ?, pid = ?,
                  routing_json = ?, fallback_json = ?
                WHERE run_id = ?
                """
            ).run([
                .text(r.backend), r.backendType.map { .text($0) } ?? .null, .text(JSONValue.array(r.command.map { .string($0) }).canonical),
                .text(r.envJSON.canonical), r.executablePath.map { .text($0) } ?? .null, r.taskRef.map { .text($0) } ?? .null,
                .text(r.host), .text(r.os), r.pid.map { .int(Int64($0)) } ?? .null,
                r.routing.map { .text($0.json.canonical) } ?? .null, .text(fallback.json.canonical), .text(r.runId),
            ])
        }
    }
}
