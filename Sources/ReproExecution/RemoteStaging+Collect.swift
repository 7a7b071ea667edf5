import Foundation
import ReproSupport
import ReproRemote

/// Collecting what workers left in object storage, and releasing it once ingested.
extension RemoteStaging {
    /// The attempt's manifest, or nil while there is none. An unreadable manifest is a failed
    /// task saying so (it never becomes a result).
    public func manifest(runId: String, attempt: Int) throws(RemoteError) -> TaskManifest? {
        let key = attemptPrefix(runId, attempt) + "/manifest.json"
        let bytes: [UInt8]
        switch try store.getCapped(bucket: location.bucket, key: key, maxBytes: TaskManifest.maxBytes) {
        case .missing: return nil
        case .tooLarge: bytes = []  // larger than any manifest: a failed task saying so (below)
        case .bytes(let b): bytes = b
        }
        let at = "\(location.scheme)://\(location.bucket)/\(key)"
        guard let j = try? JSONParser.parse(bytes), let m = try? TaskManifest(json: j), m.runId == runId else {
            return TaskManifest.failure(runId: runId, message: "the manifest at \(at) is not a manifest of run \(runId); nothing from it was stored")
        }
        // Only the worker that was given this attempt's key can sign its manifest.
        guard let k = loadKey(runId: runId, attempt: attempt) else {
            return TaskManifest.failure(
                runId: runId,
                message: "no task key for run \(runId) attempt \(attempt) on this machine (\(keyPath(runId: runId, attempt: attempt))), so the "
                    + "manifest at \(at) cannot be authenticated; nothing from it was stored. Collect a run from the store that submitted it")
        }
        guard TaskSeal.verify(j, key: k, runId: runId) else {
            return TaskManifest.failure(
                runId: runId,
                message: "the manifest at \(at) was not written by the task's worker (its MAC does not verify): someone with write access "
                    + "to the staging prefix replaced it; nothing from it was stored")
        }
        return m
    }

    /// What identifies the attempt's current heartbeat object (a new one each time the worker
    /// writes it); nil while there is none.
    func heartbeatTag(runId: String, attempt: Int) throws(RemoteError) -> String? {
        guard let o = try store.head(bucket: location.bucket, key: attemptPrefix(runId, attempt) + "/heartbeat") else { return nil }
        return (o.etag ?? "") + "|" + (o.lastModified ?? "")
    }

    /// The local folder of an attempt that never ran: empty.
    func emptyCollection(runId: String, attempt: Int) throws -> CollectedTask {
        let dir = scratch + "/collect-\(runId)-\(attempt)"
        FileIO.removeTree(dir)
        try FileIO.makeDirectory(dir + "/out")
        return CollectedTask(dir: dir)
    }

    /// Downloads a finished attempt's logs and outputs into a local folder and checks every
    /// output's bytes against the manifest.
    public func collect(runId: String, attempt: Int, manifest: TaskManifest?) throws -> CollectedTask {
        let dir = try emptyCollection(runId: runId, attempt: attempt).dir
        let a = attemptPrefix(runId, attempt)
        for name in ["stdout", "stderr"] {
            _ = try store.downloadIfPresent(bucket: location.bucket, key: a + "/" + name, to: dir + "/" + name)
        }
        guard let manifest, !manifest.outputs.isEmpty else { return CollectedTask(dir: dir) }
        let where_ = "s3://\(location.bucket)/\(a)/outputs.tar"
        // No bigger than the listed outputs in tar form (headers, pax records, padding, the end).
        let bound = manifest.outputs.reduce(Int64(4096)) { $0 + max(0, $1.size) + 3 * 512 + Int64($1.name.utf8.count) * 2 + 512 }
        let got: Bool
        do {
            got = try store.downloadIfPresent(bucket: location.bucket, key: a + "/outputs.tar", to: dir + "/outputs.tar", maxBytes: bound)
        } catch {
            guard error.kind == .integrity else { throw error }
            return CollectedTask(dir: dir, problem: "\(where_) is larger than the outputs its manifest lists (\(bound) bytes at most); nothing from it was stored")
        }
        guard got else {
            return CollectedTask(dir: dir, problem: "the manifest lists \(manifest.outputs.count) output(s) but \(where_) does not exist")
        }
        defer { unlink(dir + "/outputs.tar") }
        let extracted: Tar.Extracted
        switch Result(catching: { () throws(StoreError) -> Tar.Extracted in try Tar.extract(dir + "/outputs.tar", into: dir + "/out") }) {
        case .success(let e): extracted = e
        case .failure(let error):
            return CollectedTask(dir: dir, problem: "\(where_) cannot be read (\(error.message)); nothing from it was stored")
        }
        let listed = Set(manifest.outputs.map(\.name))
        if let extra = extracted.files.first(where: { !listed.contains($0) }) ?? extracted.links.first {
            return CollectedTask(dir: dir, problem: "\(where_) holds '\(extra)', which the manifest does not list; nothing from it was stored")
        }
        for o in manifest.outputs {
            let path = dir + "/out/" + o.name
            guard let (hash, size) = try? Hashing.sha256OfFile(atPath: path) else {
                return CollectedTask(dir: dir, problem: "output \(o.name) is in the manifest but not in \(where_); nothing was stored")
            }
            if hash != o.sha256 || size != o.size {
                return CollectedTask(
                    dir: dir,
                    problem: "output \(o.name) in \(where_) does not match the manifest (SHA-256 \(hash.prefix(12)), expected "
                        + "\(o.sha256.prefix(12))): altered in storage or in transit; nothing from this task was stored")
            }
        }
        return CollectedTask(dir: dir)
    }

    /// Deletes an ingested run's objects (code and inputs stay: other runs use them) and the
    /// local collection folder.
    public func release(runId: String, attempt: Int) {
        FileIO.removeTree(scratch + "/collect-\(runId)-\(attempt)")
        for a in 0...max(0, attempt) { unlink(keyPath(runId: runId, attempt: a)) }
        unlink(planPath(runId: runId))
        plans.removeValue(forKey: runId)
        guard let objects = try? store.list(bucket: location.bucket, prefix: runPrefix(runId) + "/") else { return }
        for o in objects { try? store.delete(bucket: location.bucket, key: o.key) }
    }
}
