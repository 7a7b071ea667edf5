import Foundation
import ReproSupport

extension Store {
    private static let runColumns = """
        run_id, key, name, spec_path, config_hash, config_json, commit_id, commit_summary, code_json, dirty,
        dirty_files_json, patch_blob, seed, solver_json, inputs_json, env_json, command_json, backend,
        resources_json, timeout_s, host, os, repro_version, executable_path, executable_sha256, status,
        exit_code, message, pid, started_at, finished_at, duration_s, stdout_blob, stderr_blob, user, job_id, task_ref
        """
    /// Columns added by migration 2, read after the hit count.
    private static let stateColumns =
        "(SELECT stale_json FROM code_states c WHERE c.code_json = runs.code_json) AS stale_json, invalidated_reason, "
        + "outputs_evicted_at, queued_at, interpreter_json, packages_blob, backend_type, attempts, origin_json, "
        + "estimate_json, routing_json, attempts_json, fallback_json, cost, cost_estimate, submitter_json"

    /// Records a run as `running` before the simulation starts, so a crash leaves a trace.
    package func insertRunning(_ r: RunRecord, blobs: [BlobRef] = []) throws(StoreError) {
        try db.transaction { () throws(StoreError) in
            try insertBlobRows(blobs)
            try insertRunningRow(r)
        }
    }

    package func insertRunningRow(_ r: RunRecord) throws(StoreError) {
        do {
            try db.prepare(Store.insertRunSQL).run([
                .text(r.runId), .text(r.key), .text(r.name), .text(r.specPath), .text(r.configHash),
                .text(r.config.canonical), .text(r.commit), .text(r.commitSummary), .text(r.code.json.canonical),
                .int(r.dirty ? 1 : 0), .text(JSONValue.array(r.dirtyFiles.map { .string($0) }).canonical),
                r.patchBlob.map { .text($0) } ?? .null, .int(r.seed), .text(r.solver.canonical),
                .text(JSONValue.array(r.inputs.map(\.json)).canonical), .text(r.envJSON.canonical),
                .text(JSONValue.array(r.command.map { .string($0) }).canonical), .text(r.backend),
                .text(r.resources.canonical), r.timeoutS.map { .double($0) } ?? .null, .text(r.host), .text(r.os),
                .text(r.reproVersion), r.executablePath.map { .text($0) } ?? .null,
                r.executableSha256.map { .text($0) } ?? .null, .text(r.status.rawValue),
                r.exitCode.map { .int(Int64($0)) } ?? .null, r.message.map { .text($0) } ?? .null,
                r.pid.map { .int(Int64($0)) } ?? .null, .text(r.startedAt), r.finishedAt.map { .text($0) } ?? .null,
                r.durationS.map { .double($0) } ?? .null, r.stdoutBlob.map { .text($0) } ?? .null,
                r.stderrBlob.map { .text($0) } ?? .null, .text(r.user), r.jobId.map { .text($0) } ?? .null,
                r.taskRef.map { .text($0) } ?? .null, r.queuedAt.map { .text($0) } ?? .null,
                r.interpreter.map { .text($0.json.canonical) } ?? .null, r.packagesBlob.map { .text($0) } ?? .null,
                r.backendType.map { .text($0) } ?? .null,
                r.estimate.map { .text($0.json.canonical) } ?? .null, r.routing.map { .text($0.json.canonical) } ?? .null,
                r.costEstimate.map { .double($0) } ?? .null,
                r.attempts.isEmpty ? .null : .text(JSONValue.array(r.attempts.map(\.json)).canonical),
                r.fallback.map { .text($0.json.canonical) } ?? .null, r.cost.map { .double($0) } ?? .null,
                r.origin.map { .text($0.json.canonical) } ?? .null, r.submitter.map { .text($0.json.canonical) } ?? .null,
            ])
        }
    }

    /// What a finished run adds to its record.
    package struct Completion: Sendable {
        package var status: RunStatus
        package var exitCode: Int32?
        package var message: String?
        package var finishedAt: String
        package var durationS: Double
        package var stdout: BlobRef?
        package var stderr: BlobRef?
        package var executablePath: String?
        package var executableSha256: String?
        package var outputs: [(OutputFile, inlineJSON: String?, blob: BlobRef)]
        /// Where it really ran (the node), when that differs from where it was submitted.
        package var host: String? = nil
        package var os: String? = nil
        package var jobId: String? = nil
        /// The interpreter behind the command and the blob of its package list.
        package var interpreter: InterpreterInfo? = nil
        package var packages: BlobRef? = nil
        /// When execution began (the executor's clock); the record's `started_at` until then
        /// says when the run was recorded, `queued_at` keeps that.
        package var startedAt: String? = nil
        /// This attempt (backend, outcome, duration, cost) for the record's attempt list.
        package var attempt: Attempt? = nil
        package var cost: Double? = nil
        /// For a run that ran elsewhere: the user who ran it there, the recorded environment
        /// with that machine's PATH and HOME, and who submitted it.
        package var user: String? = nil
        package var env: [String: String]? = nil
        package var submitter: Submitter? = nil

        public init(
            status: RunStatus,
            exitCode: Int32? = nil,
            message: String? = nil,
            finishedAt: String,
            durationS: Double,
            stdout: BlobRef? = nil,
            stderr: BlobRef? = nil,
            executablePath: String? = nil,
            executableSha256: String? = nil,
            outputs: [(OutputFile, inlineJSON: String?, blob: BlobRef)],
            host: String? = nil,
            os: String? = nil,
            jobId: String? = nil,
            interpreter: InterpreterInfo? = nil,
            packages: BlobRef? = nil,
            startedAt: String? = nil,
            attempt: Attempt? = nil,
            cost: Double? = nil,
            user: String? = nil,
            env: [String: String]? = nil,
            submitter: Submitter? = nil
        ) {
            self.status = status
            self.exitCode = exitCode
            self.message = message
            self.finishedAt = finishedAt
            self.durationS = durationS
            self.stdout = stdout
            self.stderr = stderr
            self.executablePath = executablePath
            self.executableSha256 = executableSha256
            self.outputs = outputs
            self.host = host
            self.os = os
            self.jobId = jobId
            self.interpreter = interpreter
            self.packages = packages
            self.startedAt = startedAt
            self.attempt = attempt
            self.cost = cost
            self.user = user
            self.env = env
            self.submitter = submitter
        }
    }

    /// Marks a run finished and records its outputs, all in one transaction: a run is either
    /// complete with every output, or still `running` (and later found interrupted).
    package func finish(runId: String, _ c: Completion) throws(StoreError) {
        guard try finishMany([(runId, c)]).first == true else {
            throw StoreError("run \(runId) was no longer running when its result arrived (finished elsewhere, or marked interrupted)")
        }
    }

    /// Finishes several runs in one transaction. For each, true when this call finished it;
    /// false when it was no longer `running` (another repro process ingested it first).
    package func finishMany(_ items: [(runId: String, completion: Completion)]) throws(StoreError) -> [Bool] {
        try db.transaction { () throws(StoreError) -> [Bool] in
            var done: [Bool] = []
            for (runId, c) in items { done.append(try finishOne(runId: runId, c)) }
            return done
        }
    }

    private func finishOne(runId: String, _ c: Completion) throws(StoreError) -> Bool {
        do {
            try db.prepare(Store.finishSQL).run([
                .text(c.status.rawValue), c.exitCode.map { .int(Int64($0)) } ?? .null, c.message.map { .text($0) } ?? .null,
                .text(c.finishedAt), .double(c.durationS), c.stdout.map { .text($0.sha256) } ?? .null,
                c.stderr.map { .text($0.sha256) } ?? .null, c.executablePath.map { .text($0) } ?? .null,
                c.executableSha256.map { .text($0) } ?? .null, c.host.map { .text($0) } ?? .null, c.os.map { .text($0) } ?? .null,
                c.jobId.map { .text($0) } ?? .null, c.startedAt.map { .text($0) } ?? .null,
                c.interpreter.map { .text($0.json.canonical) } ?? .null, c.packages.map { .text($0.sha256) } ?? .null,
                c.attempt.map { .text($0.json.canonical) } ?? .null, c.attempt.map { .text($0.json.canonical) } ?? .null,
                c.cost.map { .double($0) } ?? .null, c.cost.map { .double($0) } ?? .null, c.user.map { .text($0) } ?? .null,
                c.env.map { .text(JSONValue.object($0.mapValues { .string($0) }).canonical) } ?? .null, c.submitter.map { .text($0.json.canonical) } ?? .null, .text(runId),
            ])
            // Only the process that moves it out of `running` records its outputs: exactly once.
            guard db.changes == 1 else { return false }
            try insertBlobRows([c.stdout, c.stderr, c.packages].compactMap { $0 } + c.outputs.map(\.blob))
            let insertOutput = try db.prepare(Store.insertOutputSQL)
            for (o, inline, _) in c.outputs {
                try insertOutput.run([.text(runId), .text(o.name), .text(o.sha256), .int(o.size), inline.map { .text($0) } ?? .null])
            }
            // It was computed at HEAD, so its code identity is current now.
            try db.prepare(Store.codeCurrentSQL).run([.text(c.finishedAt), .text(runId)])
            return true
        }
    }

    /// A new run's row (built once: the text is also the statement cache's key).
    static let insertRunSQL =
        "INSERT INTO runs (\(runColumns), queued_at, interpreter_json, packages_blob, backend_type, estimate_json, routing_json, "
        + "cost_estimate, attempts_json, fallback_json, cost, origin_json, submitter_json) VALUES (?" + String(repeating: ", ?", count: 48) + ")"

    /// What completing a run writes (prepared ahead by `prepareCompletionStatements`).
    static let finishSQL = """
        UPDATE runs SET status = ?, exit_code = ?, message = ?, finished_at = ?, duration_s = ?,
            stdout_blob = ?, stderr_blob = ?, executable_path = COALESCE(?, executable_path),
            executable_sha256 = COALESCE(?, executable_sha256), host = COALESCE(?, host), os = COALESCE(?, os),
            job_id = COALESCE(?, job_id), queued_at = COALESCE(queued_at, started_at),
            started_at = COALESCE(?, started_at), interpreter_json = COALESCE(?, interpreter_json),
            packages_blob = COALESCE(?, packages_blob),
            attempts_json = CASE WHEN ? IS NULL THEN attempts_json ELSE json_insert(COALESCE(attempts_json, '[]'), '$[#]', json(?)) END,
            cost = CASE WHEN ? IS NULL THEN cost ELSE COALESCE(cost, 0) + ? END,
            user = COALESCE(?, user), env_json = COALESCE(?, env_json), submitter_json = COALESCE(?, submitter_json)
        WHERE run_id = ? AND status = 'running'
        """
    static let insertOutputSQL = "INSERT OR REPLACE INTO outputs (run_id, name, sha256, size, inline_json) VALUES (?, ?, ?, ?, ?)"
    static let insertBlobSQL = "INSERT OR IGNORE INTO blobs (sha256, size, stored_size, created_at) VALUES (?, ?, ?, ?)"
    static let codeCurrentSQL = """
        INSERT INTO code_states (code_json, stale_json, checked_commit, checked_at)
        SELECT code_json, NULL, commit_id, ? FROM runs WHERE run_id = ? AND status = 'succeeded'
        ON CONFLICT (code_json) DO UPDATE SET stale_json = NULL, checked_commit = excluded.checked_commit,
          checked_at = excluded.checked_at
        """

    /// Prepares the statements that complete a run, while its task runs: a short run's
    /// completion then only binds and steps them. Failures are left for the real use to report.
    package func prepareCompletionStatements() {
        for sql in [Store.finishSQL, Store.insertBlobSQL, Store.insertOutputSQL, Store.codeCurrentSQL] { _ = try? db.prepare(sql) }
    }

    package func insertBlobRows(_ blobs: [BlobRef]) throws(StoreError) {
        guard !blobs.isEmpty else { return }
        let stmt = try db.prepare(Store.insertBlobSQL)
        let now = Clock.iso8601(Clock.now())
        for b in blobs { try stmt.run([.text(b.sha256), .int(b.size), .int(b.storedSize), .text(now)]) }
    }

    /// Inserts many `running` records in one transaction (a sweep's next batch).
    /// Records runs as running in one transaction; with `invalidatedReason`, they are never
    /// servable from the moment they exist.
    package func insertRunningMany(_ records: [RunRecord], invalidatedReason: String? = nil) throws(StoreError) {
        try db.transaction { () throws(StoreError) in
            for r in records { try insertRunningRow(r) }
            if let reason = invalidatedReason {
                let stmt = try db.prepare("UPDATE runs SET invalidated_reason = ?, invalidated_at = ? WHERE run_id = ?")
                let now = Clock.iso8601(Clock.now())
                for r in records { try stmt.run([.text(reason), .text(now), .text(r.runId)]) }
            }
        }
    }

    /// Runs not finished yet, on any backend.
    package func unfinishedRuns() throws(StoreError) -> [RunRecord] {
        try fetchRuns(where: "status = 'running' ORDER BY started_at", [])
    }

    /// Marks a `running` run failed (it could not be started or submitted).
    package func markFailed(runId: String, message: String) throws(StoreError) {
        try db.transaction { () throws(StoreError) in
            try db.prepare(
                "UPDATE runs SET status = 'failed', message = ?, finished_at = COALESCE(finished_at, ?) WHERE run_id = ? AND status = 'running'"
            ).run([.text(message), .text(Clock.iso8601(Clock.now())), .text(runId)])
        }
    }

    /// Marks a `running` run interrupted (its process is gone).
    package func markInterrupted(runId: String, message: String) throws(StoreError) {
        try db.transaction { () throws(StoreError) in
            try db.prepare(
                "UPDATE runs SET status = 'interrupted', message = ?, finished_at = COALESCE(finished_at, ?) WHERE run_id = ? AND status = 'running'"
            ).run([.text(message), .text(Clock.iso8601(Clock.now())), .text(runId)])
        }
    }

    /// `fetchRuns` for questions a few runs answer: their ids found by a small statement, the
    /// records read by the one statement by id, in one read transaction (the same snapshot).
    /// The wide record query is then prepared once per process, not once per question (each
    /// preparation is ~300,000 instructions: a miss asked five).
    func fetchRunsById(where clause: String, _ args: [SQLValue]) throws(StoreError) -> [RunRecord] {
        try db.reading { () throws(StoreError) -> [RunRecord] in
            let ids = try db.prepare("SELECT run_id FROM runs WHERE \(clause)").query(args) { $0.text(0) }
            var out: [RunRecord] = []
            for id in ids { out += try fetchRuns(where: "run_id = ?", [.text(id)]) }
            return out
        }
    }

    package func fetchRuns(where clause: String, _ args: [SQLValue]) throws(StoreError) -> [RunRecord] {
        let sql = """
            SELECT \(Store.runColumns), (SELECT coalesce(sum(h.count), 0) FROM hit_days h WHERE h.run_id = runs.run_id) AS hit_count,
              \(Store.stateColumns)
            FROM runs WHERE \(clause)
            """
        // Decoded by column name (positions resolved once); a damaged row is an error that
        // names it, never a default.
        var c: RunColumns?
        let rows = try db.prepare(sql).rows(args) { (s) throws(StoreError) -> RunRecord in
            let k: RunColumns
            if let known = c { k = known } else {
                k = try RunColumns(s)
                c = k
            }
            let st = s.statement
            let id = "run " + st.text(k.runId)
            func json(_ col: Int32, _ name: String) throws(StoreError) -> JSONValue {
                do { return try JSONParser.parse(st.text(col)) } catch {
                    throw StoreError(
                        "store database \(db.path): \(name) of \(id) is not valid JSON (\(error)); the store is damaged: run `repro fsck`")
                }
            }
            let inputs: [InputFile] = (try json(k.inputsJson, "inputs_json").arrayValue ?? []).map {
                InputFile(path: $0["path"]?.stringValue ?? "", sha256: $0["sha256"]?.stringValue ?? "", size: $0["size"]?.intValue ?? 0)
            }
            let statusText = st.text(k.status)
            guard let status = RunStatus(rawValue: statusText) else {
                throw StoreError(
                    "store database \(db.path): \(id) has the unknown status '\(statusText)' (a newer repro's store, or damage); "
                        + "use a repro at least as new as the one that wrote it, or run `repro fsck`")
            }
            /// A structured column, read into its type: present but unreadable is damage, never a default.
            func typed<T>(_ col: Int32, _ name: String, _ make: (JSONValue) -> T?) throws(StoreError) -> T? {
                if st.isNull(col) { return nil }
                guard let v = make(try json(col, name)) else {
                    throw StoreError("store database \(db.path): \(name) of \(id) lacks fields it must have; the store is damaged: run `repro fsck`")
                }
                return v
            }
            let attempts = try typed(k.attemptsJson, "attempts_json", Attempt.list(json:)) ?? []
            guard let code = try typed(k.codeJson, "code_json", RecordedCode.init(json:)) else {
                throw StoreError("store database \(db.path): code_json of \(id) is missing; the store is damaged: run `repro fsck`")
            }
            let env = try typed(k.envJson, "env_json", RunRecord.environment(json:)) ?? [:]
            return RunRecord(
                runId: st.text(k.runId), key: st.text(k.key), name: st.text(k.name), specPath: st.text(k.specPath),
                configHash: st.text(k.configHash), config: try json(k.configJson, "config_json"), commit: st.text(k.commitId),
                commitSummary: st.text(k.commitSummary), code: code, dirty: st.int(k.dirty) != 0,
                dirtyFiles: (try json(k.dirtyFilesJson, "dirty_files_json").arrayValue ?? []).compactMap(\.stringValue),
                patchBlob: st.optText(k.patchBlob), seed: st.int(k.seed), solver: try json(k.solverJson, "solver_json"), inputs: inputs,
                env: env,
                command: (try json(k.commandJson, "command_json").arrayValue ?? []).compactMap(\.stringValue), backend: st.text(k.backend),
                resources: try json(k.resourcesJson, "resources_json"), timeoutS: st.optDouble(k.timeoutS), host: st.text(k.host),
                os: st.text(k.os), reproVersion: st.text(k.reproVersion), executablePath: st.optText(k.executablePath),
                executableSha256: st.optText(k.executableSha256), status: status,
                exitCode: st.optInt(k.exitCode).map { Int32(truncatingIfNeeded: $0) }, message: st.optText(k.message),
                pid: st.optInt(k.pid).map { Int32(truncatingIfNeeded: $0) }, startedAt: st.text(k.startedAt),
                finishedAt: st.optText(k.finishedAt), durationS: st.optDouble(k.durationS), stdoutBlob: st.optText(k.stdoutBlob),
                stderrBlob: st.optText(k.stderrBlob), outputs: [], hitCount: Int(st.int(k.hitCount)),
                staleReasons: Store.decodeStale(st.optText(k.staleJson)), invalidatedReason: st.optText(k.invalidatedReason),
                outputsEvictedAt: st.optText(k.outputsEvictedAt), user: st.text(k.user), jobId: st.optText(k.jobId),
                taskRef: st.optText(k.taskRef), backendType: st.optText(k.backendType), resubmissions: Int(st.int(k.attempts)),
                queuedAt: st.optText(k.queuedAt), interpreter: try typed(k.interpreterJson, "interpreter_json", InterpreterInfo.init(json:)), packagesBlob: st.optText(k.packagesBlob),
                origin: try typed(k.originJson, "origin_json", PullOrigin.init(json:)),
                estimate: try typed(k.estimateJson, "estimate_json", RuntimeEstimate.init(json:)),
                routing: try typed(k.routingJson, "routing_json", Routing.init(json:)), attempts: attempts,
                fallback: try typed(k.fallbackJson, "fallback_json", Fallback.init(json:)),
                cost: st.optDouble(k.cost), costEstimate: st.optDouble(k.costEstimate), submitter: try typed(k.submitterJson, "submitter_json", Submitter.init(json:)))
        }
        guard !rows.isEmpty else { return rows }
        // Every run's outputs in one query, not one query per run.
        let outputs = try db.prepare(
            "SELECT run_id, name, sha256, size FROM outputs WHERE run_id IN (SELECT value FROM json_each(?)) ORDER BY run_id, name"
        ).query([.text(JSONValue.array(rows.map { .string($0.runId) }).canonical)]) {
            ($0.text(0), OutputFile(name: $0.text(1), sha256: $0.text(2), size: $0.int(3)))
        }
        let byRun = Dictionary(grouping: outputs, by: \.0)
        var result = rows
        for i in result.indices { result[i].outputs = byRun[result[i].runId]?.map(\.1) ?? [] }
        return result
    }
}

extension Store {
    /// Inserts finished records in one transaction (for the benchmark harness, which needs
    /// thousands of entries without running thousands of simulations).
    package func insertForBenchmark(_ records: [RunRecord]) throws(StoreError) {
        try db.transaction { () throws(StoreError) in
            for var r in records {
                let status = r.status
                r.status = .running
                try insertRunningRow(r)
                try db.prepare("UPDATE runs SET status = ?, finished_at = ?, duration_s = ? WHERE run_id = ?").run([
                    .text(status.rawValue), .text(r.finishedAt ?? Clock.iso8601(Clock.now())), .double(r.durationS ?? 0), .text(r.runId),
                ])
            }
        }
    }
}
