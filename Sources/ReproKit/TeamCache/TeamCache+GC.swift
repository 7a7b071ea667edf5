import Crypto
import Foundation
import Synchronization
import ReproSupport
import ReproRemote
import ReproStore

extension TeamCache {
    public struct GCSummary: Sendable {
        public var remote = ""
        public var dryRun = false
        public var manifestsRemoved = 0
        /// Old manifests kept because a retained run used one of their outputs as an input.
        public var keptForLineage = 0
        public var manifestsKept = 0
        public var blobsRemoved = 0
        public var bytesFreed: Int64 = 0
        /// Unreferenced blobs left because they are younger than the grace period (a push in
        /// progress uploads blobs before its manifest).
        public var blobsInGrace = 0

        public var json: JSONValue {
            [
                "remote": .string(remote), "dry_run": .bool(dryRun), "manifests_removed": .int(Int64(manifestsRemoved)),
                "kept_for_lineage": .int(Int64(keptForLineage)), "manifests_kept": .int(Int64(manifestsKept)),
                "blobs_removed": .int(Int64(blobsRemoved)), "bytes_freed": .int(bytesFreed), "blobs_in_grace": .int(Int64(blobsInGrace)),
            ]
        }
    }

    /// Which manifests stay: every one not `old`, and (to a fixpoint) every old one whose
    /// output a staying run read as an input, so `repro audit` can still trace its lineage.
    static func retained(_ entries: [(record: RunRecord?, old: Bool)]) -> [Bool] {
        var keep = entries.map { !$0.old }
        var changed = true
        while changed {
            changed = false
            let inputs = Set(entries.indices.filter { keep[$0] }.flatMap { entries[$0].record?.inputs.map(\.sha256) ?? [] })
            for i in entries.indices where !keep[i] {
                if entries[i].record?.outputs.contains(where: { inputs.contains($0.sha256) }) == true {
                    keep[i] = true
                    changed = true
                }
            }
        }
        return keep
    }

    /// Removes manifests older than `keepDays` that no retained manifest needs (a retained run
    /// whose input is one of their outputs), then blobs no remaining manifest names. A blob
    /// younger than `grace` seconds is never removed: a concurrent push writes blobs first.
    /// Manifests that cannot be read are kept, and so is every blob while any is unreadable.
    public func gc(keepDays: Double, grace: Double = 86400, dryRun: Bool = false, now: Double = Clock.now()) throws -> GCSummary {
        var s = GCSummary(remote: label, dryRun: dryRun)
        let (s3, loc) = (s3, location)
        let all = try s3.list(bucket: loc.bucket, prefix: loc.key("manifests/")).filter { CacheManifest.key(ofObject: loc.relative($0.key)) != nil }
        let bodies = Mutex<[String: [UInt8]]>([:])
        try Parallel.forEach(all.count, width: width) { (i: Int) throws(RemoteError) in
            // Too large: unreadable, kept.
            if case .bytes(let b) = try s3.getCapped(bucket: loc.bucket, key: all[i].key, maxBytes: CacheManifest.maxBytes) {
                bodies.withLock { $0[all[i].key] = b }
            }
        }
        let fetched = bodies.withLock { $0 }
        struct Entry {
            var object: S3Object
            var record: RunRecord?
            var blobs: [String]
            var old: Bool
        }
        var entries: [Entry] = []
        var unreadable = 0
        let cutoff = now - keepDays * 86400
        for o in all {
            var record: RunRecord?
            if let b = fetched[o.key], case let v = CacheManifest.verify(b, name: loc.relative(o.key), trusted: TrustedKeys()) {
                switch v {
                case .trusted(let m), .untrusted(let m, _, _): record = m.record
                case .rejected: record = nil
                }
            }
            if record == nil { unreadable += 1 }
            let modified = o.lastModified.flatMap(Clock.parseISO8601) ?? now
            entries.append(Entry(object: o, record: record, blobs: record?.blobHashes ?? [], old: record != nil && modified < cutoff))
        }
        let keep = TeamCache.retained(entries.map { ($0.record, $0.old) })
        s.keptForLineage = zip(entries, keep).filter { $0.0.old && $0.1 }.count
        let doomed = entries.indices.filter { !keep[$0] }
        s.manifestsRemoved = doomed.count
        s.manifestsKept = entries.count - doomed.count
        if !dryRun {
            let objects = doomed.map { entries[$0] }
            try Parallel.forEach(objects.count, width: width) { (i: Int) throws(RemoteError) in
                try s3.delete(bucket: loc.bucket, key: objects[i].object.key)
                // Only a run id (checked again here): never a path into another prefix.
                if let runId = objects[i].record?.runId, RunId.isValid(runId) {
                    try s3.delete(bucket: loc.bucket, key: loc.key("runs/\(runId).json"))
                }
            }
        }
        guard unreadable == 0 else { return s }
        let referenced = Set(entries.indices.filter { keep[$0] }.flatMap { entries[$0].blobs })
        let blobs = try s3.list(bucket: loc.bucket, prefix: loc.key("cas/sha256/"))
        var remove: [S3Object] = []
        for b in blobs {
            let name = String(b.key.split(separator: "/").last ?? "")
            guard Hashing.isSHA256Hex(name), !referenced.contains(name) else { continue }
            if (b.lastModified.flatMap(Clock.parseISO8601) ?? now) > now - grace {
                s.blobsInGrace += 1
                continue
            }
            remove.append(b)
        }
        s.blobsRemoved = remove.count
        s.bytesFreed = remove.reduce(0) { $0 + $1.size }
        if !dryRun {
            let frozen = remove
            try Parallel.forEach(frozen.count, width: width) { (i: Int) throws(RemoteError) in
                try s3.delete(bucket: loc.bucket, key: frozen[i].key)
            }
        }
        return s
    }
}
