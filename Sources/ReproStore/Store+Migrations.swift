import ReproSupport

/// Schema migrations: named, ordered, append-only. Never edit one that has shipped; add a new one.
extension Store {
    static let migrations: [(version: Int, name: String, sql: String)] = [
        (
            1, "initial",
            """
            CREATE TABLE runs (
                run_id TEXT PRIMARY KEY,
                key TEXT NOT NULL,
                name TEXT NOT NULL,
                spec_path TEXT NOT NULL,
                config_hash TEXT NOT NULL,
                config_json TEXT NOT NULL,
                commit_id TEXT NOT NULL,
                commit_summary TEXT NOT NULL DEFAULT '',
                code_json TEXT NOT NULL,
                dirty INTEGER NOT NULL,
                dirty_files_json TEXT NOT NULL DEFAULT '[]',
                patch_blob TEXT,
                seed INTEGER NOT NULL,
                solver_json TEXT NOT NULL,
                inputs_json TEXT NOT NULL,
                env_json TEXT NOT NULL,
                command_json TEXT NOT NULL,
                backend TEXT NOT NULL,
                resources_json TEXT NOT NULL DEFAULT '{}',
                timeout_s REAL,
                host TEXT NOT NULL,
                os TEXT NOT NULL,
                repro_version TEXT NOT NULL,
                executable_path TEXT,
                executable_sha256 TEXT,
                status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
                exit_code INTEGER,
                message TEXT,
                pid INTEGER,
                started_at TEXT NOT NULL,
                finished_at TEXT,
                duration_s REAL,
                stdout_blob TEXT,
                stderr_blob TEXT
            );
            CREATE INDEX runs_by_key ON runs (key, status);
            CREATE INDEX runs_by_status ON runs (status);
            CREATE INDEX runs_by_started ON runs (started_at);
            CREATE TABLE outputs (
                run_id TEXT NOT NULL REFERENCES runs (run_id),
                name TEXT NOT NULL,
                sha256 TEXT NOT NULL,
                size INTEGER NOT NULL,
                inline_json TEXT,
                PRIMARY KEY (run_id, name)
            );
            CREATE INDEX outputs_by_sha256 ON outputs (sha256);
            CREATE TABLE blobs (
                sha256 TEXT PRIMARY KEY,
                size INTEGER NOT NULL,
                stored_size INTEGER NOT NULL,
                created_at TEXT NOT NULL
            );
            CREATE TABLE hits (
                run_id TEXT NOT NULL REFERENCES runs (run_id),
                at TEXT NOT NULL
            );
            CREATE INDEX hits_by_run ON hits (run_id);
            CREATE TABLE stat_cache (
                path TEXT PRIMARY KEY,
                size INTEGER NOT NULL,
                mtime_ns INTEGER NOT NULL,
                ctime_ns INTEGER NOT NULL,
                inode INTEGER NOT NULL,
                dev INTEGER NOT NULL,
                sha256 TEXT NOT NULL
            );
            -- The seed ADR's result cache table, as a view over the run records.
            CREATE VIEW results AS
            SELECT
                r.config_hash AS config_hash,
                r.commit_id AS git_commit,
                r.seed AS random_seed,
                COALESCE(
                    (SELECT o.inline_json FROM outputs o WHERE o.run_id = r.run_id AND o.name = 'result.json'),
                    (SELECT json_group_array(json_object('name', x.name, 'sha256', x.sha256, 'size', x.size))
                       FROM (SELECT name, sha256, size FROM outputs WHERE run_id = r.run_id ORDER BY name) x)
                ) AS result_json,
                r.finished_at AS computed_at,
                r.duration_s AS execution_time_seconds,
                r.backend AS backend
            FROM runs r
            WHERE r.status = 'succeeded';
            """
        ),
        (
            2, "cache-state",
            """
            -- What the hooks compute, per distinct code identity (a handful of rows however many
            -- entries share it, so a refresh rewrites little): stale_json is NULL while the identity
            -- matches HEAD, else a JSON list of {path, from, to} for the code paths that changed.
            CREATE TABLE code_states (
                code_json TEXT PRIMARY KEY,
                stale_json TEXT,
                checked_commit TEXT NOT NULL,
                checked_at TEXT NOT NULL
            );
            -- Set by `repro cache invalidate`; sticky: a later refresh does not clear it.
            ALTER TABLE runs ADD COLUMN invalidated_reason TEXT;
            ALTER TABLE runs ADD COLUMN invalidated_at TEXT;
            -- Set by `repro cache gc` when the run's output blobs were evicted.
            ALTER TABLE runs ADD COLUMN outputs_evicted_at TEXT;
            CREATE INDEX runs_by_name ON runs (name, started_at);
            CREATE INDEX runs_by_code ON runs (status, code_json);
            """
        ),
        (
            3, "attestations-and-verifications",
            """
            -- Signed in-toto statements about runs (DSSE envelopes, as JSON text).
            CREATE TABLE attestations (
                run_id TEXT NOT NULL REFERENCES runs (run_id),
                keyid TEXT NOT NULL,
                envelope_json TEXT NOT NULL,
                created_at TEXT NOT NULL
            );
            CREATE INDEX attestations_by_run ON attestations (run_id);
            -- `repro verify` results: one row per verification of a key.
            CREATE TABLE verifications (
                verification_id TEXT PRIMARY KEY,
                key TEXT NOT NULL,
                verdict TEXT NOT NULL,
                backends_json TEXT NOT NULL,
                runs_json TEXT NOT NULL,
                details_json TEXT NOT NULL,
                created_at TEXT NOT NULL
            );
            CREATE INDEX verifications_by_key ON verifications (key);
            -- Who ran it (the PROV agent besides the host).
            ALTER TABLE runs ADD COLUMN user TEXT NOT NULL DEFAULT '';
            """
        ),
        (
            4, "backends",
            """
            -- The scheduler's id for the run (JOBID or JOBID_INDEX for an array task) and the
            -- task directory its files are staged in, for runs that outlive the repro process.
            ALTER TABLE runs ADD COLUMN job_id TEXT;
            ALTER TABLE runs ADD COLUMN task_dir TEXT;
            ALTER TABLE runs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
            """
        ),
        (
            5, "trustworthy-records",
            """
            -- The results view leaves out invalidated runs (verify --perturb's, say): they have the
            -- same config hash and seed as the real one and must not be mistaken for it.
            DROP VIEW results;
            CREATE VIEW results AS
            SELECT
                r.config_hash AS config_hash,
                r.commit_id AS git_commit,
                r.seed AS random_seed,
                COALESCE(
                    (SELECT o.inline_json FROM outputs o WHERE o.run_id = r.run_id AND o.name = 'result.json'),
                    (SELECT json_group_array(json_object('name', x.name, 'sha256', x.sha256, 'size', x.size))
                       FROM (SELECT name, sha256, size FROM outputs WHERE run_id = r.run_id ORDER BY name) x)
                ) AS result_json,
                r.finished_at AS computed_at,
                r.duration_s AS execution_time_seconds,
                r.backend AS backend
            FROM runs r
            WHERE r.status = 'succeeded' AND r.invalidated_reason IS NULL;
            -- Which run's output was last written to each path by repro (a miss or a hit), so
            -- audit and lineage name the run that served a file, not any run with those bytes.
            CREATE TABLE materializations (
                path TEXT PRIMARY KEY,
                sha256 TEXT NOT NULL,
                run_id TEXT NOT NULL,
                at TEXT NOT NULL
            );
            CREATE INDEX materializations_by_sha ON materializations (sha256);
            -- When the run was queued (started_at is when it began executing); the interpreter
            -- behind the command (real path, version); the installed packages, as a blob.
            ALTER TABLE runs ADD COLUMN queued_at TEXT;
            ALTER TABLE runs ADD COLUMN interpreter_json TEXT;
            ALTER TABLE runs ADD COLUMN packages_blob TEXT;
            -- Interpreter probes (see InterpreterProbe), valid while the folders they watched
            -- (site-packages, the interpreter) keep their size and mtime.
            CREATE TABLE interpreter_cache (
                key TEXT PRIMARY KEY,
                result_json TEXT NOT NULL,
                watched_json TEXT NOT NULL
            );
            """
        ),
        (
            6, "remote-tasks",
            """
            -- A task's reference on its backend: a folder for a shared file system, an
            -- s3://.../tasks/RUN prefix for a machine that shares nothing (was task_dir).
            ALTER TABLE runs RENAME COLUMN task_dir TO task_ref;
            -- The backend's type (local, slurm, slurm-rest, ...): `backend` is the name users
            -- configured (`cloud`), which may mean different things in different projects.
            ALTER TABLE runs ADD COLUMN backend_type TEXT;
            """
        ),
        (
            7, "team-cache",
            """
            -- A run pulled from a team cache: the remote, the manifest and its signer (JSON).
            -- Two producers' disagreeing results for one key are both kept as runs.
            ALTER TABLE runs ADD COLUMN origin_json TEXT;
            """
        ),
        (
            8, "dispatch",
            """
            -- Hybrid dispatch: the runtime estimate and routing decision a run was sent by, every
            -- attempt (backend failures included), a fallback to local, and what it cost.
            ALTER TABLE runs ADD COLUMN estimate_json TEXT;
            ALTER TABLE runs ADD COLUMN routing_json TEXT;
            ALTER TABLE runs ADD COLUMN attempts_json TEXT;
            ALTER TABLE runs ADD COLUMN fallback_json TEXT;
            ALTER TABLE runs ADD COLUMN cost REAL;
            ALTER TABLE runs ADD COLUMN cost_estimate REAL;
            """
        ),
        (
            9, "hit-days",
            """
            -- Hits counted per run and UTC day (what `hit_count` and the report's hits-per-day
            -- read), not a row per hit: a no-op re-run of a 1,000-point sweep added 1,000 rows
            -- for good and rewrote most of the run index's pages, every time.
            CREATE TABLE hit_days (
                run_id TEXT NOT NULL REFERENCES runs (run_id),
                day TEXT NOT NULL,
                count INTEGER NOT NULL,
                PRIMARY KEY (run_id, day)
            ) WITHOUT ROWID;
            INSERT INTO hit_days (run_id, day, count) SELECT run_id, substr(at, 1, 10), count(*) FROM hits GROUP BY 1, 2;
            DROP TABLE hits;
            """
        ),
        (
            10, "servable-index",
            """
            -- The runs that can answer a cache hit, with the columns a sweep's lookup reads: its
            -- thousands of keys are answered from this index alone, without reading the runs'
            -- rows (their JSON columns often span several pages).
            CREATE INDEX runs_servable ON runs (key, finished_at, run_id, backend, job_id, status, invalidated_reason, outputs_evicted_at)
                WHERE status = 'succeeded' AND invalidated_reason IS NULL AND outputs_evicted_at IS NULL;
            """
        ),
        (
            11, "durations-index",
            """
            -- How long each spec's runs took, by config: every miss estimates its runtime from
            -- it (the planner, without statistics, took the status index and read every
            -- succeeded run in the store: 6 ms a miss in a store of 10,000 runs).
            CREATE INDEX runs_durations ON runs (name, config_hash, duration_s, status)
                WHERE status = 'succeeded' AND duration_s IS NOT NULL;
            """
        ),
        (
            12, "newest-run-indexes",
            """
            -- The newest run of a key or a name, succeeded ones first (why a miss missed, `repro
            -- why`): in this order, one probe. Without them every such question read and sorted
            -- every run of the key (each miss of a key recomputed 100 times read 100 rows) or
            -- of the name (a sweep's points share one: 10,000 rows).
            CREATE INDEX runs_by_key_newest ON runs (key, (status = 'succeeded'), started_at);
            CREATE INDEX runs_by_name_newest ON runs (name, (status = 'succeeded'), started_at);
            """
        ),
        (
            13, "submitter",
            """
            -- Who submitted a run that ran elsewhere, and from where: `user`, `host` and the
            -- environment then say where it ran (the worker's manifest), as for a local run.
            ALTER TABLE runs ADD COLUMN submitter_json TEXT;
            """
        ),
    ]

    /// Applies pending migrations in one IMMEDIATE transaction, so two processes opening a new
    /// store at once do not both create the tables.
    func migrate() throws(StoreError) {
        let latest = Store.migrations.last?.version ?? 0
        if try currentSchemaVersion() >= latest { return }
        try db.transaction { () throws(StoreError) in
            try db.exec(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            let current = try currentSchemaVersion()
            for m in Store.migrations where m.version > current {
                try db.exec(m.sql)
                try db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)")
                    .run([.int(Int64(m.version)), .text(m.name), .text(Clock.iso8601(Clock.now()))])
            }
        }
    }

    func currentSchemaVersion() throws(StoreError) -> Int {
        let exists = try db.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
            .query { $0.int(0) }.first ?? 0
        guard exists > 0 else { return 0 }
        let v = try db.prepare("SELECT max(version) FROM schema_migrations").query { $0.optInt(0) }.first ?? nil
        let version = Int(v ?? 0)
        let known = Store.migrations.last?.version ?? 0
        if version > known {
            throw StoreError(
                "the store at \(root) has schema version \(version), newer than this repro understands (\(known)); upgrade repro")
        }
        return version
    }
}
