import Foundation

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
    public func disagreements(forKeys keys: [String]) throws(StoreError) -> [TeamCache.Finding] {
        var byKey: [String: [String: [String]]] = [:]
        for r in try succeededRuns(forKeys: keys) {
            byKey[r.key, default: [:]][r.outputsDigest, default: []].append(Store.producer(of: r))
        }
        return byKey.filter { $0.value.count > 1 }.sorted { $0.key < $1.key }.map { key, results in
            TeamCache.Finding(key: key, results: results.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        }
    }

    /// Who produced a run, in words.
    public static func producer(of r: RunRecord) -> String {
        let who = "\(r.user.isEmpty ? "?" : r.user)@\(r.host)"
        guard r.origin != .null else { return "computed here by \(who) (run \(r.runId))" }
        let remote = r.origin["remote"]?.stringValue ?? "?"
        let trust = r.origin["trusted_as"]?.stringValue ?? "?"
        return "pulled from \(remote), \(trust), produced by \(who) (run \(r.runId))"
    }

    /// Adds finished runs pulled from a team cache, with their outputs and blob rows, in one
    /// transaction: a run is in the store with every blob it names, or not at all. The blobs
    /// must already be stored (under the blob write lock, so gc leaves them alone).
    func importRuns(_ runs: [(record: RunRecord, origin: JSONValue)], blobs: [BlobRef]) throws(StoreError) {
        guard !runs.isEmpty || !blobs.isEmpty else { return }
        try db.transaction { () throws(StoreError) in
            try insertBlobRows(blobs)
            let setOrigin = try db.prepare("UPDATE runs SET origin_json = ?, attempts = ? WHERE run_id = ?")
            let insertOutput = try db.prepare("INSERT OR REPLACE INTO outputs (run_id, name, sha256, size, inline_json) VALUES (?, ?, ?, ?, ?)")
            for (r, origin) in runs {
                for h in r.blobHashes where !hasBlob(h) {
                    throw StoreError("blob \(h.prefix(12)) of run \(r.runId) is not in the store; nothing of the run was recorded")
                }
                try insertRunningRow(r)
                try setOrigin.run([.text(origin.canonical), .int(Int64(r.attempts)), .text(r.runId)])
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
    }
}
