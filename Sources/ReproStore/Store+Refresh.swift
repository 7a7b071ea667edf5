import Foundation
import ReproSupport
import ReproGit

/// What a refresh changed.
package struct RefreshSummary: Sendable {
    package var headCommit: String
    var becameStale = 0
    var becameCurrent = 0
    /// The code-path changes behind `becameStale`, with how many entries each touched.
    package var reasons: [StaleReason: Int] = [:]

    /// The one line the hooks print (nil when nothing changed).
    package var line: String? {
        guard becameStale > 0 || becameCurrent > 0 else { return nil }
        var parts: [String] = []
        if becameStale > 0 {
            let why = reasons.sorted { $0.value > $1.value }.prefix(3).map { $0.key.text }.joined(separator: "; ")
            parts.append("\(becameStale) cache entr\(becameStale == 1 ? "y" : "ies") now stale (\(why))")
        }
        if becameCurrent > 0 {
            parts.append("\(becameCurrent) current again")
        }
        return "repro: " + parts.joined(separator: ", ") + " at \(headCommit.prefix(12))"
    }
}

extension Store {
    /// Recomputes which succeeded entries are current for HEAD: an entry is stale when any of
    /// its code paths names a different git object at HEAD. Entries are grouped by their code
    /// identity, so the cost is one tree lookup per distinct (identity, path), not per entry.
    package func refresh(repo: GitRepository) throws -> RefreshSummary {
        let head = try repo.headCommit()
        let tree = try head.tree()
        var summary = RefreshSummary(headCommit: head.id)
        var headIds: [String: String?] = [:]  // one tree lookup per path
        /// The object a code path names at HEAD (through symlinks, as the key does); nil when
        /// a link leads outside the repository, which only a run can check (by content).
        func idAtHead(_ path: String) throws -> String? {
            if let id = headIds[path] { return id }
            let id: String?
            switch try tree.resolve(path) {
            case .object(_, let oid, _): id = oid
            case .outside: id = nil
            case .missing: id = "absent"
            }
            headIds[path] = id
            return id
        }
        // Entries per code identity (an index-only scan), and what was last decided for each.
        let groups = try db.prepare(
            """
            SELECT r.code_json, count(*), c.stale_json, c.code_json IS NOT NULL
            FROM runs r LEFT JOIN code_states c ON c.code_json = r.code_json
            WHERE r.status = 'succeeded' GROUP BY r.code_json
            """
        ).query { ($0.text(0), Int($0.int(1)), $0.optText(2), $0.int(3) != 0) }
        var updates: [(code: String, stale: String?)] = []
        // The counts the hook prints are of entries that can be served: one whose outputs were
        // evicted or that was invalidated does not become "current again". Counted only for the
        // identities whose state changed (reading those columns is not index-only).
        let servable = try db.prepare(
            """
            SELECT count(*) FROM runs WHERE status = 'succeeded' AND code_json = ?
              AND outputs_evicted_at IS NULL AND invalidated_reason IS NULL
            """)
        func servableCount(_ code: String) throws(StoreError) -> Int {
            try servable.query([.text(code)]) { Int($0.int(0)) }.first ?? 0
        }
        for (code, _, oldStale, known) in groups {
            var reasons: [StaleReason] = []
            for entry in (try? JSONParser.parse(code))?["paths"]?.arrayValue ?? [] {
                guard let path = entry["path"]?.stringValue else { continue }
                let recorded = entry["kind"]?.stringValue == "absent" ? "absent" : (entry["id"]?.stringValue ?? "")
                guard let now = try idAtHead(path) else { continue }
                if recorded != now { reasons.append(StaleReason(path: path, from: recorded, to: now)) }
            }
            let newStale = reasons.isEmpty ? nil : JSONValue.array(reasons.map(\.json)).canonical
            if newStale != nil && oldStale == nil {
                let count = try servableCount(code)
                summary.becameStale += count
                for r in reasons { summary.reasons[r, default: 0] += count }
            }
            if newStale == nil && oldStale != nil { summary.becameCurrent += try servableCount(code) }
            if newStale != oldStale || !known { updates.append((code, newStale)) }
        }
        if !updates.isEmpty {
            try db.transaction { () throws(StoreError) in
                let stmt = try db.prepare(
                    """
                    INSERT INTO code_states (code_json, stale_json, checked_commit, checked_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT (code_json) DO UPDATE SET stale_json = excluded.stale_json,
                      checked_commit = excluded.checked_commit, checked_at = excluded.checked_at
                    """)
                let now = Clock.iso8601(Clock.now())
                for u in updates {
                    try stmt.run([.text(u.code), u.stale.map { .text($0) } ?? .null, .text(head.id), .text(now)])
                }
            }
        }
        return summary
    }
}
