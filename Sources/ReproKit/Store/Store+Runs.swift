import Foundation

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
    public func insertRunning(_ r: RunRecord, blobs: [BlobRef] = []) throws(StoreError) {
        try db.transaction { () throws(StoreError) in
            try insertBlobRows(blobs)
            try insertRunningRow(r)
        }
    }

    func insertRunningRow(_ r: RunRecord) throws(StoreError) {
        do {
            try db.prepare(Store.insertRunSQL).run([
                .text(r.runId), .text(r.key), .text(r.name), .text(r.specPath), .text(r.configHash),
                .text(r.config.canonical), .text(r.commit), .text(r.commitSummary), .text(r.code.canonical),
                .int(r.dirty ? 1 : 0), .text(JSONValue.array(r.dirtyFiles.map { .string($0) }).canonical),
                r.patchBlob.map { .text($0) } ?? .null, .int(r.seed), .text(r.solver.canonical),
                .text(JSONValue.array(r.inputs.map(\.json)).canonical), .text(r.env.canonical),
                .text(JSONValue.array(r.command.map { .string($0) }).canonical), .text(r.backend),
                .text(r.resources.canonical), r.timeoutS.map { .double($0) } ?? .null, .text(r.host), .text(r.os),
                .text(r.reproVersion), r.executablePath.map { .text($0) } ?? .null,
                r.executableSha256.map { .text($0) } ?? .null, .text(r.status.rawValue),
                r.exitCode.map { .int(Int64($0)) } ?? .null, r.message.map { .text($0) } ?? .null,
                r.pid.map { .int(Int64($0)) } ?? .null, .text(r.startedAt), r.finishedAt.map { .text($0) } ?? .null,
                r.durationS.map { .double($0) } ?? .null, r.stdoutBlob.map { .text($0) } ?? .null,
                r.stderrBlob.map { .text($0) } ?? .null, .text(r.user), r.jobId.map { .text($0) } ?? .null,
                r.taskRef.map { .text($0) } ?? .null, r.queuedAt.map { .text($0) } ?? .null,
                r.interpreter == .null ? .null : .text(r.interpreter.canonical), r.packagesBlob.map { .text($0) } ?? .null,
                r.backendType.map { .text($0) } ?? .null,
                r.estimate == .null ? .null : .text(r.estimate.canonical), r.routing == .null ? .null : .text(r.routing.canonical),
                r.costEstimate.map { .double($0) } ?? .null,
                r.attemptLog.isEmpty ? .null : .text(JSONValue.array(r.attemptLog).canonical),
                r.fallback == .null ? .null : .text(r.fallback.canonical), r.cost.map { .double($0) } ?? .null,
                r.origin == .null ? .null : .text(r.origin.canonical),
            ])
        }
    }

    /// What a finished run adds to its record.
    public struct Completion: Sendable {
        public var status: RunStatus
        public var exitCode: Int32?
        public var message: String?
        public var finishedAt: String
        public var durationS: Double
        public var stdout: BlobRef?
        public var stderr: BlobRef?
        public var executablePath: String?
        public var executableSha256: String?
        public var outputs: [(OutputFile, inlineJSON: String?, blob: BlobRef)]
        /// Where it really ran (the node), when that differs from where it was submitted.
        public var host: String? = nil
        public var os: String? = nil
        public var jobId: String? = nil
        /// The interpreter behind the command and the blob of its package list.
        public var interpreter: InterpreterInfo? = nil
        public var packages: BlobRef? = nil
        /// When execution began (the executor's clock); the record's `started_at` until then
        /// says when the run was recorded, `queued_at` keeps that.
        public var startedAt: String? = nil
        /// This attempt (backend, outcome, duration, cost) for the record's attempt list.
        public var attempt: JSONValue? = nil
        public var cost: Double? = nil
        /// For a run that ran elsewhere: the user who ran it there, the recorded environment
        /// with that machine's PATH and HOME, and who submitted it.
        public var user: String? = nil
        public var env: JSONValue? = nil
        public var submitter: JSONValue? = nil
    }

    /// Marks a run finished and records its outputs, all in one transaction: a run is either
    /// complete with every output, or still `running` (and later found interrupted).
    public func finish(runId: String, _ c: Completion) throws(StoreError) {
        guard try finishMany([(runId, c)]).first == true else {
            throw StoreError("run \(runId) was no longer running when its result arrived (finished elsewhere, or marked interrupted)")
        }
    }

    /// Finishes several runs in one transaction. For each, true when this call finished it;
    /// false when it was no longer `running` (another repro process ingested it first).
    public func finishMany(_ items: [(runId: String, completion: Completion)]) throws(StoreError) -> [Bool] {
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
                c.attempt.map { .text($0.canonical) } ?? .null, c.attempt.map { .text($0.canonical) } ?? .null,
                c.cost.map { .double($0) } ?? .null, c.cost.map { .double($0) } ?? .null, c.user.map { .text($0) } ?? .null,
                c.env.map { .text($0.canonical) } ?? .null, c.submitter.map { .text($0.canonical) } ?? .null, .text(runId),
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
        + "cost_estimate, attempts_json, fallback_json, cost, origin_json) VALUES (?" + String(repeating: ", ?", count: 47) + ")"

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
    func prepareCompletionStatements() {
        for sql in [Store.finishSQL, Store.insertBlobSQL, Store.insertOutputSQL, Store.codeCurrentSQL] { _ = try? db.prepare(sql) }
    }

    func insertBlobRows(_ blobs: [BlobRef]) throws(StoreError) {
        guard !blobs.isEmpty else { return }
        let stmt = try db.prepare(Store.insertBlobSQL)
        let now = Clock.iso8601(Clock.now())
        for b in blobs { try stmt.run([.text(b.sha256), .int(b.size), .int(b.storedSize), .text(now)]) }
    }

    /// The newest succeeded run with this key that may be served: not invalidated, not
    /// evicted, not older than `maxAge` seconds.
    public func servableRun(forKey key: String, maxAge: Double) throws(StoreError) -> RunRecord? {
        let oldest = Clock.iso8601(Clock.now() - maxAge)
        return try fetchRunsById(
            where: """
                key = ? AND status = 'succeeded' AND invalidated_reason IS NULL AND outputs_evicted_at IS NULL
                AND finished_at >= ? ORDER BY finished_at DESC LIMIT 1
                """, [.text(key), .text(oldest)]
        ).first
    }

    /// `servableRun(forKey:)` for many keys in one query (a sweep's hit check).
    public func servableRuns(forKeys keys: [String], maxAge: Double) throws(StoreError) -> [String: RunRecord] {
        guard !keys.isEmpty else { return [:] }
        let oldest = Clock.iso8601(Clock.now() - maxAge)
        let found = try fetchRuns(
            where: """
                key IN (SELECT value FROM json_each(?)) AND status = 'succeeded' AND invalidated_reason IS NULL
                AND outputs_evicted_at IS NULL AND finished_at >= ? ORDER BY finished_at
                """, [.text(JSONValue.array(keys.map { .string($0) }).canonical), .text(oldest)])
        var out: [String: RunRecord] = [:]
        for r in found { out[r.key] = r }  // ordered by finished_at: the newest wins
        return out
    }

    /// What a sweep needs to serve a hit: the run, where it ran, and its outputs.
    public struct ServableHit: Sendable {
        public var runId: String
        public var backend: String
        public var jobId: String?
        /// When the run finished (the newest run of a key answers it).
        public var finishedAt: String
        public var outputs: [OutputFile]
    }

    /// `servableRuns`, without decoding whole records: a no-op re-run of a large sweep only
    /// needs which run answers each key and its outputs (same rules: succeeded, not
    /// invalidated or evicted, within max age, the newest wins). A key that is not 64 hex
    /// digits answers nothing (no stored run has one).
    public func servableHits(forKeys keys: [String], maxAge: Double) throws(StoreError) -> [String: ServableHit] {
        let found = try servableHits(forDigests: keys.compactMap { KeyDigest(hex: $0) }, maxAge: maxAge)
        var out = [String: ServableHit](minimumCapacity: found.count)
        for (k, hit) in found { out[k.hex] = hit }
        return out
    }

    /// `servableHits(forKeys:)` by digest: how a sweep asks (no hex strings made for the keys
    /// it sends or the rows it reads).
    func servableHits(forDigests given: [KeyDigest], maxAge: Double) throws(StoreError) -> [KeyDigest: ServableHit] {
        guard !given.isEmpty else { return [:] }
        let oldest = Clock.iso8601(Clock.now() - maxAge)
        let filter = """
            r.status = 'succeeded' AND r.invalidated_reason IS NULL AND r.outputs_evicted_at IS NULL AND r.finished_at >= ?
            """
        // Many keys against a smaller store: reading every servable row and matching here beats
        // handing SQLite a JSON array of hundreds of thousands of keys.
        var scan = false
        if given.count > 1000 {
            let stored = try db.prepare("SELECT count(*) FROM runs").query { $0.int(0) }.first ?? 0
            scan = Int64(given.count) > stored
        }
        let wanted = scan ? Set(given) : []
        // Sorted: SQLite puts an IN list into a b-tree, and the index is then walked in order.
        let keys = scan ? [] : given.sorted()
        // One statement: the servable index covers the runs' side (the planner, without
        // statistics, would take the key index and read every row), and each run's outputs
        // join it (one row per output; none for a run without outputs).
        // Up to a block of keys (what a sweep asks at a time) are bound one by one: no JSON
        // to write and for SQLite to parse. More (a team pull of a whole sweep) go as JSON.
        let keyFilter: String
        var params: [SQLValue] = []
        if scan {
            keyFilter = " "
        } else if keys.count <= 2048 {
            keyFilter = " r.key IN (" + repeatElement("?", count: keys.count).joined(separator: ",") + ") AND "
            params.reserveCapacity(keys.count + 1)
            for k in keys { params.append(.text(k.hex)) }
        } else {
            keyFilter = " r.key IN (SELECT value FROM json_each(?)) AND "
            params.append(.text(JSONValue.array(keys.map { .string($0.hex) }).canonical))
        }
        params.append(.text(oldest))
        let sql = """
            SELECT r.key, r.run_id, r.backend, r.job_id, r.finished_at, o.name, o.sha256, o.size
            FROM runs r INDEXED BY runs_servable LEFT JOIN outputs o ON o.run_id = r.run_id WHERE
            """ + keyFilter + filter
        // One hash lookup per row: the entry is found by index and changed in place.
        var out = [KeyDigest: ServableHit](minimumCapacity: given.count)
        try db.prepare(sql).each(params) { row in
            guard let key = row.digest(0), !scan || wanted.contains(key) else { return }
            let output = row.isNull(5) ? nil : OutputFile(name: row.text(5), sha256: row.text(6), size: row.int(7))
            guard let i = out.index(forKey: key) else {
                out[key] = ServableHit(runId: row.text(1), backend: row.text(2), jobId: row.optText(3), finishedAt: row.text(4), outputs: output.map { [$0] } ?? [])
                return
            }
            let runId = row.text(1)
            if out.values[i].runId == runId {
                if let output { out.values[i].outputs.append(output) }
            } else {
                let finished = row.text(4)
                if finished > out.values[i].finishedAt {  // the newest wins
                    out.values[i] = ServableHit(runId: runId, backend: row.text(2), jobId: row.optText(3), finishedAt: finished, outputs: output.map { [$0] } ?? [])
                }
            }
        }
        for i in out.indices where out.values[i].outputs.count > 1 { out.values[i].outputs.sort { $0.name < $1.name } }
        return out
    }

    /// A run with this key still queued or running on a scheduler (not this machine's pool).
    public func submittedRun(forKey key: String) throws(StoreError) -> RunRecord? {
        try fetchRunsById(where: "key = ? AND status = 'running' AND COALESCE(backend_type, backend) != 'local' AND task_ref IS NOT NULL ORDER BY started_at DESC LIMIT 1", [.text(key)]).first
    }

    /// Every run with this key: succeeded ones first, then newest first.
    /// `excluding`: a run not to count (the one computing this key right now).
    public func runs(forKey key: String, limit: Int = 1_000_000, excluding: String? = nil) throws(StoreError) -> [RunRecord] {
        let clause = excluding == nil ? Store.runsOfKeyClause : Store.otherRunsOfKeyClause
        let args: [SQLValue] = [.text(key)] + (excluding.map { [.text($0)] } ?? []) + [.int(Int64(limit))]
        // A few (`repro why` and a miss ask for one): found by id; many in one query.
        return try limit <= 16 ? fetchRunsById(where: clause, args) : fetchRuns(where: clause, args)
    }

    /// The newest run of a spec name (succeeded ones first), for `repro why`.
    public func newestRun(named name: String) throws(StoreError) -> RunRecord? {
        try fetchRunsById(where: Store.newestOfNameClause, [.text(name)]).first
    }

    /// The newest finished run of a name with this config (it differs from a spec now only in
    /// code, seed or inputs), or with this code identity (only in config): the candidates
    /// besides the newest run that `repro why` compares with.
    public func newestRun(named name: String, configHash: String) throws(StoreError) -> RunRecord? {
        try fetchRunsById(
            where: "name = ? AND config_hash = ? AND status != 'running' ORDER BY (status = 'succeeded') DESC, started_at DESC LIMIT 1",
            [.text(name), .text(configHash)]
        ).first
    }

    public func newestRun(named name: String, code: JSONValue) throws(StoreError) -> RunRecord? {
        try fetchRunsById(
            where: "name = ? AND code_json = ? AND status != 'running' ORDER BY (status = 'succeeded') DESC, started_at DESC LIMIT 1",
            [.text(name), .text(code.canonical)]
        ).first
    }

    /// The orders of `runs(forKey:)` and `newestRun(named:)`: the indexes of migration 12
    /// answer them in one probe (a test checks the plan).
    static let runsOfKeyClause = "key = ? ORDER BY (status = 'succeeded') DESC, started_at DESC LIMIT ?"
    static let otherRunsOfKeyClause = "key = ? AND run_id != ? ORDER BY (status = 'succeeded') DESC, started_at DESC LIMIT ?"
    static let newestOfNameClause = "name = ? AND status != 'running' ORDER BY (status = 'succeeded') DESC, started_at DESC LIMIT 1"

    static func decodeStale(_ text: String?) -> [StaleReason] {
        guard let text, let list = (try? JSONParser.parse(text))?.arrayValue else { return [] }
        return list.map {
            StaleReason(path: $0["path"]?.stringValue ?? "", from: $0["from"]?.stringValue ?? "", to: $0["to"]?.stringValue ?? "")
        }
    }

    /// Records a hit served, and where its outputs were written, in one transaction (one
    /// write on the hit path).
    public func recordHit(runId: String, materialized: [(path: String, sha256: String, runId: String)] = []) throws(StoreError) {
        try recordHits(runIds: [runId], materialized: materialized)
    }

    /// Newest first.
    public func recentRuns(limit: Int) throws(StoreError) -> [RunRecord] {
        try fetchRuns(where: "1 ORDER BY started_at DESC, run_id DESC LIMIT ?", [.int(Int64(limit))])
    }

    public func runs(inStatus status: RunStatus) throws(StoreError) -> [RunRecord] {
        // By id when few can match (every command asks for the running ones: usually none).
        status == .running ? try fetchRunsById(where: "status = ?", [.text(status.rawValue)])
            : try fetchRuns(where: "status = ?", [.text(status.rawValue)])
    }

    /// A run by its exact id.
    public func run(id: String) throws(StoreError) -> RunRecord? {
        try fetchRuns(where: "run_id = ?", [.text(id)]).first
    }

    /// A run by id or unique id prefix.
    public func run(matching prefix: String) throws(ReproErrorBox) -> RunRecord {
        guard !prefix.isEmpty, prefix.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
            throw ReproErrorBox(ConfigError("'\(prefix)' is not a run id; `repro log` lists them"))
        }
        let found: [RunRecord]
        do {
            found = try fetchRuns(where: "run_id LIKE ? ORDER BY started_at LIMIT 6", [.text(prefix + "%")])
        } catch {
            throw ReproErrorBox(error)
        }
        if found.count == 1 { return found[0] }
        if found.isEmpty { throw ReproErrorBox(NotFoundError("no run in the store at \(root) has an id starting with '\(prefix)'; `repro log` lists them")) }
        let ids = found.prefix(5).map(\.runId).joined(separator: ", ")
        throw ReproErrorBox(ConfigError("run id prefix '\(prefix)' is ambiguous (\(ids)\(found.count > 5 ? ", ..." : "")); give more characters"))
    }

    /// Records where a submitted run's files are and the scheduler's id for it.
    public func setJobs(_ items: [(runId: String, jobId: String?, taskRef: String, attempt: Int)]) throws(StoreError) {
        try db.transaction { () throws(StoreError) in
            let stmt = try db.prepare("UPDATE runs SET job_id = ?, task_ref = ?, attempts = ? WHERE run_id = ?")
            for i in items {
                try stmt.run([i.jobId.map { .text($0) } ?? .null, .text(i.taskRef), .int(Int64(i.attempt)), .text(i.runId)])
            }
        }
    }

    /// Inserts many `running` records in one transaction (a sweep's next batch).
    /// Records runs as running in one transaction; with `invalidatedReason`, they are never
    /// servable from the moment they exist.
    public func insertRunningMany(_ records: [RunRecord], invalidatedReason: String? = nil) throws(StoreError) {
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
    public func unfinishedRuns() throws(StoreError) -> [RunRecord] {
        try fetchRuns(where: "status = 'running' ORDER BY started_at", [])
    }

    /// Marks a `running` run failed (it could not be started or submitted).
    public func markFailed(runId: String, message: String) throws(StoreError) {
        try db.transaction { () throws(StoreError) in
            try db.prepare(
                "UPDATE runs SET status = 'failed', message = ?, finished_at = COALESCE(finished_at, ?) WHERE run_id = ? AND status = 'running'"
            ).run([.text(message), .text(Clock.iso8601(Clock.now())), .text(runId)])
        }
    }

    /// Removes the `running` records of tasks that never started (a sweep's queued points at
    /// Ctrl-C): a point that never ran is not a run.
    public func discardUnstarted(runIds: [String]) throws(StoreError) {
        guard !runIds.isEmpty else { return }
        try db.prepare("DELETE FROM runs WHERE run_id IN (SELECT value FROM json_each(?)) AND status = 'running'")
            .run([.text(JSONValue.array(runIds.map { .string($0) }).canonical)])
    }

    /// Marks a `running` run interrupted (its process is gone).
    public func markInterrupted(runId: String, message: String) throws(StoreError) {
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

    func fetchRuns(where clause: String, _ args: [SQLValue]) throws(StoreError) -> [RunRecord] {
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
            let interpreter: JSONValue = st.isNull(k.interpreterJson) ? .null : try json(k.interpreterJson, "interpreter_json")
            let origin: JSONValue = st.isNull(k.originJson) ? .null : try json(k.originJson, "origin_json")
            func optJSON(_ col: Int32, _ name: String) throws(StoreError) -> JSONValue { st.isNull(col) ? .null : try json(col, name) }
            let estimate = try optJSON(k.estimateJson, "estimate_json")
            let routing = try optJSON(k.routingJson, "routing_json")
            let attemptLog = try optJSON(k.attemptsJson, "attempts_json").arrayValue ?? []
            let fallback = try optJSON(k.fallbackJson, "fallback_json")
            return RunRecord(
                runId: st.text(k.runId), key: st.text(k.key), name: st.text(k.name), specPath: st.text(k.specPath),
                configHash: st.text(k.configHash), config: try json(k.configJson, "config_json"), commit: st.text(k.commitId),
                commitSummary: st.text(k.commitSummary), code: try json(k.codeJson, "code_json"), dirty: st.int(k.dirty) != 0,
                dirtyFiles: (try json(k.dirtyFilesJson, "dirty_files_json").arrayValue ?? []).compactMap(\.stringValue),
                patchBlob: st.optText(k.patchBlob), seed: st.int(k.seed), solver: try json(k.solverJson, "solver_json"), inputs: inputs,
                env: try json(k.envJson, "env_json"),
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
                taskRef: st.optText(k.taskRef), backendType: st.optText(k.backendType), attempts: Int(st.int(k.attempts)),
                queuedAt: st.optText(k.queuedAt), interpreter: interpreter, packagesBlob: st.optText(k.packagesBlob),
                origin: origin, estimate: estimate, routing: routing, attemptLog: attemptLog, fallback: fallback,
                cost: st.optDouble(k.cost), costEstimate: st.optDouble(k.costEstimate), submitter: try optJSON(k.submitterJson, "submitter_json"))
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
    /// A full cache key from a unique prefix of one.
    public func resolveKey(prefix: String) throws(ReproErrorBox) -> String {
        guard prefix.count >= 4, prefix.allSatisfy(\.isHexDigit) else {
            throw ReproErrorBox(ConfigError("'\(prefix)' is not a cache key prefix (at least 4 hex digits); `repro log` shows keys"))
        }
        let keys: [String]
        do {
            keys = try db.prepare("SELECT DISTINCT key FROM runs WHERE key LIKE ? LIMIT 2").query([.text(prefix.lowercased() + "%")]) {
                $0.text(0)
            }
        } catch { throw ReproErrorBox(error) }
        guard keys.count == 1 else {
            throw ReproErrorBox(
                keys.isEmpty
                    ? NotFoundError("no run in the store at \(root) has a key starting with '\(prefix)'")
                    : ConfigError("key prefix '\(prefix)' is ambiguous; give more digits"))
        }
        return keys[0]
    }
}

extension Store {
    /// Inserts finished records in one transaction (for the benchmark harness, which needs
    /// thousands of entries without running thousands of simulations).
    public func insertForBenchmark(_ records: [RunRecord]) throws(StoreError) {
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

/// Which runs `repro log` lists.
public struct RunFilter: Sendable {
    public var name: String?
    public var status: RunStatus?
    /// Only runs started at or after this time (seconds since the epoch).
    public var since: Double?
    public init(name: String? = nil, status: RunStatus? = nil, since: Double? = nil) {
        self.name = name
        self.status = status
        self.since = since
    }
}

extension Store {
    /// The newest runs that match `filter`, at most `limit`.
    public func runs(matching filter: RunFilter, limit: Int) throws(StoreError) -> [RunRecord] {
        var clauses: [String] = []
        var args: [SQLValue] = []
        if let n = filter.name {
            clauses.append("name = ?")
            args.append(.text(n))
        }
        if let s = filter.status {
            clauses.append("status = ?")
            args.append(.text(s.rawValue))
        }
        if let t = filter.since {
            clauses.append("started_at >= ?")
            args.append(.text(Clock.iso8601(t)))
        }
        args.append(.int(Int64(limit)))
        let clause = (clauses.isEmpty ? "1" : clauses.joined(separator: " AND ")) + " ORDER BY started_at DESC, run_id DESC LIMIT ?"
        return try fetchRuns(where: clause, args)
    }
}

extension Store {
    /// Counts cache hits for many runs (today, UTC, as every stored time) and records where
    /// their outputs were written, in one transaction.
    public func recordHits(runIds: [String], materialized: [(path: String, sha256: String, runId: String)] = []) throws(StoreError) {
        guard !runIds.isEmpty else { return }
        try db.transaction { () throws(StoreError) in
            // One statement for all of them (a sweep's thousand hits), each run counted as often
            // as it is listed.
            try db.prepare(
                """
                INSERT INTO hit_days (run_id, day, count) SELECT value, ?, count(*) FROM json_each(?) WHERE true GROUP BY value
                ON CONFLICT (run_id, day) DO UPDATE SET count = count + excluded.count
                """
            ).run([.text(String(Clock.iso8601(Clock.now()).prefix(10))), .text(JSONValue.array(runIds.map { .string($0) }).canonical)])
            try insertMaterializations(materialized)
        }
    }
}
