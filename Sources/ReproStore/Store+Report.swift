import Foundation
import ReproSupport

extension Store {
    /// For each config hash, its newest succeeded run (else its newest run), by config hash.
    package func newestRuns(forConfigHashes hashes: [String]) throws(StoreError) -> [RunRecord] {
        guard !hashes.isEmpty else { return [] }
        let all = try fetchRuns(
            where: "config_hash IN (SELECT value FROM json_each(?)) ORDER BY config_hash, (status = 'succeeded') DESC, started_at DESC",
            [.text(JSONValue.array(hashes.map { .string($0) }).canonical)])
        var seen = Set<String>()
        return all.filter { seen.insert($0.configHash).inserted }
    }

    /// Cache hits served per day (`YYYY-MM-DD` → count) for these runs.
    package func hitsPerDay(runIds: [String]) throws(StoreError) -> [String: Int] {
        guard !runIds.isEmpty else { return [:] }
        let rows = try db.prepare(
            "SELECT day, sum(count) FROM hit_days WHERE run_id IN (SELECT value FROM json_each(?)) GROUP BY 1"
        ).query([.text(JSONValue.array(runIds.map { .string($0) }).canonical)]) { ($0.text(0), Int($0.int(1))) }
        return Dictionary(rows, uniquingKeysWith: +)
    }

    /// How many attestations each of these runs has.
    package func attestationCounts(runIds: [String]) throws(StoreError) -> [String: Int] {
        guard !runIds.isEmpty else { return [:] }
        let rows = try db.prepare(
            "SELECT run_id, count(*) FROM attestations WHERE run_id IN (SELECT value FROM json_each(?)) GROUP BY run_id"
        ).query([.text(JSONValue.array(runIds.map { .string($0) }).canonical)]) { ($0.text(0), Int($0.int(1))) }
        return Dictionary(rows, uniquingKeysWith: +)
    }

    /// Verification records for these keys, oldest first.
    package func verifications(forKeys keys: [String]) throws(StoreError) -> [JSONValue] {
        guard !keys.isEmpty else { return [] }
        return try db.prepare(
            """
            SELECT verification_id, verdict, backends_json, runs_json, details_json, created_at, key FROM verifications
            WHERE key IN (SELECT value FROM json_each(?)) ORDER BY created_at, verification_id
            """
        ).query([.text(JSONValue.array(keys.map { .string($0) }).canonical)]) { s -> JSONValue in
            [
                "verification_id": .string(s.text(0)), "verdict": .string(s.text(1)),
                "backends": (try? JSONParser.parse(s.text(2))) ?? .null, "runs": (try? JSONParser.parse(s.text(3))) ?? .null,
                "details": (try? JSONParser.parse(s.text(4))) ?? .null, "created_at": .string(s.text(5)), "key": .string(s.text(6)),
            ]
        }
    }
}
