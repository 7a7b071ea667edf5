import Foundation
import ReproSupport

extension Store {
    /// DSSE envelopes stored for a run, oldest first.
    package func attestations(runId: String) throws(StoreError) -> [(keyid: String, envelope: String, createdAt: String)] {
        try db.prepare("SELECT keyid, envelope_json, created_at FROM attestations WHERE run_id = ? ORDER BY rowid").query([.text(runId)]) {
            (keyid: $0.text(0), envelope: $0.text(1), createdAt: $0.text(2))
        }
    }

    package func addAttestation(runId: String, keyid: String, envelope: String) throws(StoreError) {
        try db.transaction { () throws(StoreError) in
            try db.prepare("INSERT INTO attestations (run_id, keyid, envelope_json, created_at) VALUES (?, ?, ?, ?)")
                .run([.text(runId), .text(keyid), .text(envelope), .text(Clock.iso8601(Clock.now()))])
        }
    }

    /// Verification records for a key, newest first, as JSON objects.
    package func verifications(forKey key: String) throws(StoreError) -> [JSONValue] {
        try db.prepare(
            "SELECT verification_id, verdict, backends_json, runs_json, details_json, created_at FROM verifications WHERE key = ? ORDER BY created_at DESC"
        ).query([.text(key)]) { s -> JSONValue in
            [
                "verification_id": .string(s.text(0)), "verdict": .string(s.text(1)),
                "backends": (try? JSONParser.parse(s.text(2))) ?? .null, "runs": (try? JSONParser.parse(s.text(3))) ?? .null,
                "details": (try? JSONParser.parse(s.text(4))) ?? .null, "created_at": .string(s.text(5)),
            ]
        }
    }

    /// A verification by id or unique id prefix, as JSON (with its key), or nil.
    package func verification(matching prefix: String) throws(StoreError) -> JSONValue? {
        guard !prefix.isEmpty, prefix.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else { return nil }
        let found = try db.prepare(
            "SELECT verification_id, verdict, backends_json, runs_json, details_json, created_at, key FROM verifications WHERE verification_id LIKE ? LIMIT 2"
        ).query([.text(prefix + "%")]) { s -> JSONValue in
            [
                "verification_id": .string(s.text(0)), "verdict": .string(s.text(1)),
                "backends": (try? JSONParser.parse(s.text(2))) ?? .null, "runs": (try? JSONParser.parse(s.text(3))) ?? .null,
                "details": (try? JSONParser.parse(s.text(4))) ?? .null, "created_at": .string(s.text(5)), "key": .string(s.text(6)),
            ]
        }
        return found.count == 1 ? found[0] : nil
    }

    package func addVerification(id: String, key: String, verdict: String, backends: JSONValue, runs: JSONValue, details: JSONValue)
        throws(StoreError)
    {
        try db.transaction { () throws(StoreError) in
            try db.prepare(
                "INSERT INTO verifications (verification_id, key, verdict, backends_json, runs_json, details_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            ).run([
                .text(id), .text(key), .text(verdict), .text(backends.canonical), .text(runs.canonical), .text(details.canonical),
                .text(Clock.iso8601(Clock.now())),
            ])
        }
    }
}
