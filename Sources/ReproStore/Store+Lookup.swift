import Foundation
import ReproSupport

/// Finding runs: what a key may serve, a run by id or prefix, the newest of a name, `repro log`.
extension Store {
    /// The newest succeeded run with this key that may be served: not invalidated, not
    /// evicted, not older than `maxAge` seconds.
    package func servableRun(forKey key: String, maxAge: Double) throws(StoreError) -> RunRecord? {
        let oldest = Clock.iso8601(Clock.now() - maxAge)
        return try fetchRunsById(
            where: """
                key = ? AND status = 'succeeded' AND invalidated_reason IS NULL AND outputs_evicted_at IS NULL
                AND finished_at >= ? ORDER BY finished_at DESC LIMIT 1
                """, [.text(key), .text(oldest)]
        ).first
    }

    /// `servableRun(forKey:)` for many keys in one query (a sweep's hit check).
    package func servableRuns(forKeys keys: [String], maxAge: Double) throws(StoreError) -> [String: RunRecord] {
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
    package struct ServableHit: Sendable {
        package var runId: String
        package var backend: String
        package var jobId: String?
        /// When the run finished (the newest run of a key answers it).
        package var finishedAt: String
        package var outputs: [OutputFile]
    }

    /// `servableRuns`, without decoding whole records: a no-op re-run of a large sweep only
    /// needs which run answers each key and its outputs (same rules: succeeded, not
    /// invalidated or evicted, within max age, the newest wins). A key that is not 64 hex
    /// digits answers nothing (no stored run has one).
    package func servableHits(forKeys keys: [String], maxAge: Double) throws(StoreError) -> [String: ServableHit] {
        let found = try servableHits(forDigests: keys.compactMap { KeyDigest(hex: $0) }, maxAge: maxAge)
        var out = [String: ServableHit](minimumCapacity: found.count)
        for (k, hit) in found { out[k.hex] = hit }
        return out
    }

    /// `servableHits(forKeys:)` by digest: how a sweep asks (no hex strings made for the keys
    /// it sends or the rows it reads).
    package func servableHits(forDigests given: [KeyDigest], maxAge: Double) throws(StoreError) -> [KeyDigest: ServableHit] {
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
    package func submittedRun(forKey key: String) throws(StoreError) -> RunRecord? {
        try fetchRunsById(where: "key = ? AND status = 'running' AND COALESCE(backend_type, backend) != 'local' AND task_ref IS NOT NULL ORDER BY started_at DESC LIMIT 1", [.text(key)]).first
    }

    /// Every run with this key: succeeded ones first, then newest first.
    /// `excluding`: a run not to count (the one computing this key right now).
    package func runs(forKey key: String, limit: Int = 1_000_000, excluding: String? = nil) throws(StoreError) -> [RunRecord] {
        let clause = excluding == nil ? Store.runsOfKeyClause : Store.otherRunsOfKeyClause
        let args: [SQLValue] = [.text(key)] + (excluding.map { [.text($0)] } ?? []) + [.int(Int64(limit))]
        // A few (`repro why` and a miss ask for one): found by id; many in one query.
        return try limit <= 16 ? fetchRunsById(where: clause, args) : fetchRuns(where: clause, args)
    }

    /// The newest run of a spec name (succeeded ones first), for `repro why`.
    package func newestRun(named name: String) throws(StoreError) -> RunRecord? {
        try fetchRunsById(where: Store.newestOfNameClause, [.text(name)]).first
    }

    /// The newest finished run of a name with this config (it differs from a spec now only in
    /// code, seed or inputs), or with this code identity (only in config): the candidates
    /// besides the newest run that `repro why` compares with.
    /// Succeeded runs only, each in the shape an index answers (`runs_durations`,
    /// `runs_by_code`): a store of 10,000 runs of one name is not read row by row.
    package func newestRun(named name: String, configHash: String) throws(StoreError) -> RunRecord? {
        try fetchRunsById(where: Store.newestOfConfigClause, [.text(name), .text(configHash)]).first
    }

    static let newestOfConfigClause =
        "name = ? AND config_hash = ? AND status = 'succeeded' AND duration_s IS NOT NULL ORDER BY started_at DESC LIMIT 1"
    static let newestOfCodeClause = "status = 'succeeded' AND code_json = ? AND name = ? ORDER BY started_at DESC LIMIT 1"

    package func newestRun(named name: String, code: JSONValue) throws(StoreError) -> RunRecord? {
        try fetchRunsById(where: Store.newestOfCodeClause, [.text(code.canonical), .text(name)]).first
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
    package func recordHit(runId: String, materialized: [(path: String, sha256: String, runId: String)] = []) throws(StoreError) {
        try recordHits(runIds: [runId], materialized: materialized)
    }

    /// Newest first.
    package func recentRuns(limit: Int) throws(StoreError) -> [RunRecord] {
        try fetchRuns(where: "1 ORDER BY started_at DESC, run_id DESC LIMIT ?", [.int(Int64(limit))])
    }

    package func runs(inStatus status: RunStatus) throws(StoreError) -> [RunRecord] {
        // By id when few can match (every command asks for the running ones: usually none).
        status == .running ? try fetchRunsById(where: "status = ?", [.text(status.rawValue)])
            : try fetchRuns(where: "status = ?", [.text(status.rawValue)])
    }

    /// A run by its exact id.
    package func run(id: String) throws(StoreError) -> RunRecord? {
        try fetchRuns(where: "run_id = ?", [.text(id)]).first
    }

    /// A run by id or unique id prefix.
    package func run(matching prefix: String) throws(ReproErrorBox) -> RunRecord {
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
}

extension Store {
    /// A full cache key from a unique prefix of one.
    package func resolveKey(prefix: String) throws(ReproErrorBox) -> String {
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

/// Which runs `repro log` lists.
package struct RunFilter: Sendable {
    package var name: String?
    package var status: RunStatus?
    /// Only runs started at or after this time (seconds since the epoch).
    package var since: Double?
    /// Only runs whose key `repro verify` checked.
    package var verified = false
    public init(name: String? = nil, status: RunStatus? = nil, since: Double? = nil, verified: Bool = false) {
        self.name = name
        self.status = status
        self.since = since
        self.verified = verified
    }
}

extension Store {
    /// The newest runs that match `filter`, at most `limit`.
    package func runs(matching filter: RunFilter, limit: Int) throws(StoreError) -> [RunRecord] {
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
        // In the query, not filtered afterwards: any number of runs, verified or not, is searched.
        if filter.verified { clauses.append("key IN (SELECT key FROM verifications)") }
        args.append(.int(Int64(limit)))
        let clause = (clauses.isEmpty ? "1" : clauses.joined(separator: " AND ")) + " ORDER BY started_at DESC, run_id DESC LIMIT ?"
        return try fetchRuns(where: clause, args)
    }
}

extension Store {
    /// Counts cache hits for many runs (today, UTC, as every stored time) and records where
    /// their outputs were written, in one transaction.
    package func recordHits(runIds: [String], materialized: [(path: String, sha256: String, runId: String)] = []) throws(StoreError) {
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
