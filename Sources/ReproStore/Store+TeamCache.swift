import Foundation
import ReproSupport

extension Store {
    /// A blob's uncompressed size from its row, or nil when it has none.
    public func blobSize(_ sha256: String) throws(StoreError) -> Int64? {
        try db.prepare("SELECT size FROM blobs WHERE sha256 = ?").query([.text(sha256)]) { $0.int(0) }.first
    }

    /// These runs, in no particular order (ids not in the store are left out).
    public func runs(ids: [String]) throws(StoreError) -> [RunRecord] {
        guard !ids.isEmpty else { return [] }
        return try fetchRuns(where: "run_id IN (SELECT value FROM json_each(?))", [.text(JSONValue.array(ids.map { .string($0) }).canonical)])
    }

    /// Which of these run ids the store has.
    public func existingRunIds(_ ids: [String]) throws(StoreError) -> Set<String> {
        guard !ids.isEmpty else { return [] }
        let rows = try db.prepare("SELECT run_id FROM runs WHERE run_id IN (SELECT value FROM json_each(?))")
            .query([.text(JSONValue.array(ids.map { .string($0) }).canonical)]) { $0.text(0) }
        return Set(rows)
    }

    /// The succeeded, not invalidated runs of these keys.
    func succeededRuns(forKeys keys: [String]) throws(StoreError) -> [RunRecord] {
        guard !keys.isEmpty else { return [] }
        return try fetchRuns(
            where: "key IN (SELECT value FROM json_each(?)) AND status = 'succeeded' AND invalidated_reason IS NULL ORDER BY finished_at",
            [.text(JSONValue.array(Array(Set(keys)).map { .string($0) }).canonical)])
    }

    /// For each key, the outputs digests of the results the store holds.
    public func outputDigests(forKeys keys: [String]) throws(StoreError) -> [String: Set<String>] {
        var out: [String: Set<String>] = [:]
        for r in try succeededRuns(forKeys: keys) { out[r.key, default: []].insert(r.outputsDigest) }
        return out
    }

    /// Keys whose results disagree: succeeded runs of one key with different outputs. Each
    /// result names who produced it (here, or which remote and signer).
    public func disagreements(forKeys keys: [String]) throws(StoreError) -> [ResultDisagreement] {
        var byKey: [String: [String: [String]]] = [:]
        for r in try succeededRuns(forKeys: keys) {
            byKey[r.key, default: [:]][r.outputsDigest, default: []].append(Store.producer(of: r))
        }
        return byKey.filter { $0.value.count > 1 }.sorted { $0.key < $1.key }.map { key, results in
            ResultDisagreement(key: key, results: results.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        }
    }

    /// Who produced a run, in words.
    public static func producer(of r: RunRecord) -> String {
        let who = "\(r.user.isEmpty ? "?" : r.user)@\(r.host)"
        guard let origin = r.origin else { return "computed here by \(who) (run \(r.runId))" }
        return "pulled from \(origin.remote), \(origin.trustedAs), produced by \(who) (run \(r.runId))"
    }

    /// Adds finished runs pulled from a team cache, with their outputs and blob rows, in one
    /// transaction: a run is in the store with every blob it names, or not at all. The blobs
    /// must already be stored (under the blob write lock, so gc leaves them alone). A run that
    /// cannot be imported (a run id already here, a blob missing) is left out, each in its own
    /// savepoint, and returned with the reason: one bad manifest never fails a pull.
    @discardableResult
    package func importRuns(_ runs: [(record: RunRecord, origin: PullOrigin)], blobs: [BlobRef]) throws(StoreError) -> [String: String] {
        guard !runs.isEmpty || !blobs.isEmpty else { return [:] }
        var failed: [String: String] = [:]
        // From now on, serving checks the signers of pulled runs against the trusted keys.
        if !runs.isEmpty && access(trustMarker, F_OK) != 0 { try FileIO.writeAtomically([], to: trustMarker, sync: false) }
        try db.transaction { () throws(StoreError) in
            try insertBlobRows(blobs)
            let setOrigin = try db.prepare("UPDATE runs SET origin_json = ?, attempts = ? WHERE run_id = ?")
            let insertOutput = try db.prepare("INSERT OR REPLACE INTO outputs (run_id, name, sha256, size, inline_json) VALUES (?, ?, ?, ?, ?)")
            for (r, origin) in runs {
                try db.exec("SAVEPOINT import_run")
                do throws(StoreError) {
                    try importRun(r, origin: origin, setOrigin: setOrigin, insertOutput: insertOutput)
                    try db.exec("RELEASE import_run")
                } catch {
                    // A full disk or an I/O error is the pull's problem, not this run's.
                    if error.isDiskFull || error.sqliteCode.map({ $0 & 0xFF == 10 }) == true { throw error }
                    try db.exec("ROLLBACK TO import_run")
                    try db.exec("RELEASE import_run")
                    failed[r.runId] = error.message
                }
            }
        }
        return failed
    }

    private func importRun(_ r: RunRecord, origin: PullOrigin, setOrigin: SQLiteStatement, insertOutput: SQLiteStatement) throws(StoreError) {
        for h in r.blobHashes where !hasBlob(h) {
            throw StoreError("blob \(h.prefix(12)) of run \(r.runId) is not in the store; nothing of the run was recorded")
        }
        try insertRunningRow(r)
        try setOrigin.run([.text(origin.json.canonical), .int(Int64(r.resubmissions)), .text(r.runId)])
        for o in r.outputs {
            var inline: String? = nil
            if (o.name == "result.json" || o.name.hasSuffix("/result.json")), o.size <= 4 << 20,
                let bytes = try? readBlob(o.sha256), (try? JSONParser.parse(bytes)) != nil
            {
                inline = String(decoding: bytes, as: UTF8.self)
            }
            try insertOutput.run([.text(r.runId), .text(o.name), .text(o.sha256), .int(o.size), inline.map { .text($0) } ?? .null])
        }
    }
}

extension Store {
    /// Written when runs are pulled; holds the trusted key ids last checked against them.
    package var trustMarker: String { root + "/pulled-trust" }

    static let revokedPrefix = "its signer is no longer trusted"

    /// Pulled runs are served only while their signer is trusted: when `cache.trusted_keys`
    /// changes, runs whose signer left it are invalidated, and runs whose signer came back are
    /// servable again. Costs one `access` when nothing was ever pulled, and a read of the key
    /// ids otherwise; the runs are only looked at when the set changed.
    package func reconcileTrust(trustedIds: Set<String>) throws(StoreError) {
        guard access(trustMarker, F_OK) == 0 else { return }
        let fingerprint = trustedIds.sorted().joined(separator: "\n")
        if let last = try? FileIO.readAll(trustMarker, limit: 1 << 20), String(decoding: last, as: UTF8.self) == fingerprint { return }
        let rows = try db.prepare(
            "SELECT run_id, json_extract(origin_json, '$.signer'), json_extract(origin_json, '$.trusted_as'), invalidated_reason FROM runs WHERE origin_json IS NOT NULL"
        ).query { ($0.text(0), $0.optText(1), $0.optText(2) ?? "", $0.optText(3)) }
        let stamp = Clock.iso8601(Clock.now())
        try db.transaction { () throws(StoreError) in
            let revoke = try db.prepare("UPDATE runs SET invalidated_reason = ?, invalidated_at = ? WHERE run_id = ? AND invalidated_reason IS NULL")
            let restore = try db.prepare("UPDATE runs SET invalidated_reason = NULL, invalidated_at = NULL WHERE run_id = ? AND invalidated_reason LIKE ?")
            for (runId, signer, trustedAs, reason) in rows {
                // Accepted with --trust-unsigned: taken on that word, not on a key.
                if trustedAs.hasSuffix("accepted with --trust-unsigned") { continue }
                let trusted = signer.map { trustedIds.contains($0) } ?? false
                if !trusted && reason == nil {
                    let why = "\(Store.revokedPrefix) (key id \(signer?.prefix(16) ?? "none") is not in cache.trusted_keys)"
                    try revoke.run([.text(why), .text(stamp), .text(runId)])
                } else if trusted, reason?.hasPrefix(Store.revokedPrefix) == true {
                    try restore.run([.text(runId), .text(Store.revokedPrefix + "%")])
                }
            }
        }
        try FileIO.writeAtomically(Array(fingerprint.utf8), to: trustMarker, sync: false)
    }
}

/// Two or more results for one key that disagree: a reproducibility finding.
public struct ResultDisagreement: Sendable {
    public var key: String
    /// Each distinct result: its outputs digest and who produced it.
    public var results: [(digest: String, producers: [String])]

    public var json: JSONValue {
        [
            "key": .string(key),
            "results": .array(results.map { ["outputs_digest": .string($0.digest), "producers": .array($0.producers.map { .string($0) })] }),
        ]
    }
}
