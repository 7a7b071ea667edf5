import Foundation
import ReproSupport

/// `repro cache status`: how the entries stand for HEAD.
public struct CacheStatus: Sendable {
    package var current = 0
    package var stale = 0
    package var expired = 0
    package var evicted = 0
    package var failed = 0
    package var interrupted = 0
    package var invalidated = 0
    /// Runs of `repro verify --perturb`: recorded under perturbed environments, never served.
    package var perturbed = 0
    /// Compressed bytes of the blobs the store holds.
    package var bytes: Int64 = 0
    package var blobs = 0
    package var reasons: [(reason: StaleReason, count: Int)] = []
    package var headCommit: String = ""
    package var maxAge: Double = 0

    package var json: JSONValue {
        .object([
            "current": .int(Int64(current)), "stale": .int(Int64(stale)), "expired": .int(Int64(expired)),
            "evicted": .int(Int64(evicted)), "failed": .int(Int64(failed)), "interrupted": .int(Int64(interrupted)),
            "invalidated": .int(Int64(invalidated)), "perturbed": .int(Int64(perturbed)), "bytes": .int(bytes), "blobs": .int(Int64(blobs)),
            "head": .string(headCommit), "max_age_s": .double(maxAge),
            "reasons": .array(
                reasons.map { r in
                    var o = r.reason.json.objectValue ?? [:]
                    o["count"] = .int(Int64(r.count))
                    return .object(o)
                } + (invalidated > 0 ? [["path": "(invalidated by hand)", "count": .int(Int64(invalidated))]] : [])),
        ])
    }
}

/// Which entries `repro cache invalidate` or `gc` acts on.
package enum EntrySelection: Sendable {
    case all
    case key(String)
    case stale
    case olderThan(Double)
    case runId(String)
}

extension Store {
    package func cacheStatus(maxAge: Double, headCommit: String) throws(StoreError) -> CacheStatus {
        var st = CacheStatus()
        st.headCommit = headCommit
        st.maxAge = maxAge
        let oldest = Clock.iso8601(Clock.now() - maxAge)
        let counts = try db.prepare(
            """
            SELECT
              CASE
                WHEN status = 'failed' THEN 'failed'
                WHEN status = 'interrupted' THEN 'interrupted'
                WHEN status = 'running' THEN 'running'
                WHEN outputs_evicted_at IS NOT NULL THEN 'evicted'
                WHEN invalidated_reason LIKE 'verify --perturb%' THEN 'perturbed'
                WHEN invalidated_reason IS NOT NULL THEN 'invalidated'
                WHEN c.stale_json IS NOT NULL THEN 'stale'
                WHEN finished_at < ? THEN 'expired'
                ELSE 'current'
              END AS state, count(*)
            FROM runs LEFT JOIN code_states c USING (code_json) GROUP BY state
            """
        ).query([.text(oldest)]) { ($0.text(0), Int($0.int(1))) }
        for (state, n) in counts {
            switch state {
            case "failed": st.failed = n
            case "interrupted": st.interrupted = n
            case "evicted": st.evicted = n
            case "invalidated": st.invalidated = n; st.stale += n
            case "perturbed": st.perturbed = n
            case "stale": st.stale += n
            case "expired": st.expired = n
            case "current": st.current = n
            default: break
            }
        }
        var grouped: [StaleReason: Int] = [:]
        let rows = try db.prepare(
            """
            SELECT c.stale_json, count(*) FROM runs r JOIN code_states c USING (code_json)
            WHERE r.status = 'succeeded' AND c.stale_json IS NOT NULL
              AND r.invalidated_reason IS NULL AND r.outputs_evicted_at IS NULL GROUP BY c.stale_json
            """
        ).query { ($0.text(0), Int($0.int(1))) }
        for (json, n) in rows {
            for r in Store.decodeStale(json) { grouped[r, default: 0] += n }
        }
        st.reasons = grouped.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key.path < $1.key.path) }
            .map { (reason: $0.key, count: $0.value) }
        let blobRow = try db.prepare("SELECT count(*), COALESCE(sum(stored_size), 0) FROM blobs").query { ($0.int(0), $0.int(1)) }
        st.blobs = Int(blobRow.first?.0 ?? 0)
        st.bytes = blobRow.first?.1 ?? 0
        return st
    }

    /// Marks the selected succeeded entries stale by hand. Returns how many changed.
    package func invalidate(_ selection: EntrySelection, reason: String) throws(StoreError) -> Int {
        let (clause, args) = selection.sql
        return try db.transaction { () throws(StoreError) -> Int in
            try db.prepare(
                "UPDATE runs SET invalidated_reason = ?, invalidated_at = ? WHERE status = 'succeeded' AND invalidated_reason IS NULL AND (\(clause))"
            ).run([.text(reason), .text(Clock.iso8601(Clock.now()))] + args)
            return db.changes
        }
    }
}

extension EntrySelection {
    var sql: (String, [SQLValue]) {
        switch self {
        case .all: return ("1", [])
        case .key(let k): return ("key = ?", [.text(k)])
        case .stale:
            return (
                "code_json IN (SELECT code_json FROM code_states WHERE stale_json IS NOT NULL) OR invalidated_reason IS NOT NULL",
                []
            )
        case .olderThan(let s): return ("finished_at < ?", [.text(Clock.iso8601(Clock.now() - s))])
        case .runId(let id): return ("run_id = ?", [.text(id)])
        }
    }
}
