import Crypto
import Foundation
import Synchronization
import ReproSupport
import ReproRemote
import ReproStore

extension TeamCache {
    public struct PushSummary: Sendable {
        public var remote = ""
        public var dryRun = false
        /// Manifests written (or that would be, with --dry-run).
        public var pushed = 0
        /// Runs whose manifest the remote already had.
        public var present = 0
        public var skipped: [(runId: String, reason: String)] = []
        public var blobs = 0
        public var bytes: Int64 = 0
        public var seconds = 0.0
        public var signer: String?

        public var json: JSONValue {
            [
                "remote": .string(remote), "dry_run": .bool(dryRun), "pushed": .int(Int64(pushed)), "already_present": .int(Int64(present)),
                "skipped": .array(skipped.map { ["run_id": .string($0.runId), "reason": .string($0.reason)] }), "blobs": .int(Int64(blobs)),
                "bytes": .int(bytes), "seconds": .double(seconds), "signer": signer.json,
            ]
        }
    }

    /// Pushes the manifests (and first the blobs) of these runs; runs that are not servable
    /// results made here are skipped with the reason. Nothing already on the remote is sent.
    public func push(
        _ runs: [RunRecord], signingKey: Curve25519.Signing.PrivateKey?, dryRun: Bool = false,
        progress: @escaping (Progress) -> Void = { _ in }
    ) throws -> PushSummary {
        let t0 = Clock.monotonic()
        var s = PushSummary(remote: label, dryRun: dryRun)
        s.signer = signingKey.map { String(Attestation.keyid($0.publicKey).prefix(16)) }
        var candidates: [RunRecord] = []
        var seenRuns = Set<String>()
        for r in runs where seenRuns.insert(r.runId).inserted {
            if let why = TeamCache.unpushable(r) { s.skipped.append((r.runId, why)) } else { candidates.append(r) }
        }
        let existing = try manifests(forKeys: candidates.map(\.key))
        var todo: [(record: RunRecord, name: String, envelope: [UInt8])] = []
        let pushedAt = Clock.iso8601(Clock.now())
        for r in candidates {
            // Sizes from the store's blob rows; outputs carry their own.
            let sizes = try blobSizes(r)
            let m = try CacheManifest.make(record: r, sizes: sizes, signingKey: signingKey, pushedAt: pushedAt)
            if existing[r.key]?.contains(m.name) == true {
                s.present += 1
            } else {
                todo.append((r, m.name, m.envelope))
            }
        }
        let (s3, loc) = (s3, location)
        var i = 0
        // One look at what the remote has, for every blob of every run to push.
        var sent = try presentBlobs(Set(todo.flatMap { $0.record.blobHashes }))
        while i < todo.count {
            let part = Array(todo[i..<min(i + chunk, todo.count)])
            i += part.count
            let needed = Set(part.flatMap { $0.record.blobHashes }).subtracting(sent)
            let blobs = needed.sorted()
            var bytesOut: Int64 = 0
            if !dryRun {
                // Read on this thread (a Store is single-threaded), send on many.
                var payloads: [(name: String, bytes: [UInt8]?, file: String?)] = []
                var temps: [String] = []
                defer { for t in temps { unlink(t) } }
                for h in blobs {
                    let size = (try? blobSizeFromStore(h)) ?? 0
                    if size > 16 << 20 {
                        let tmp = store.root + "/tmp/push-\(getpid())-\(h.prefix(16))"
                        try store.materializeBlob(h, to: tmp)
                        temps.append(tmp)
                        payloads.append((TeamCache.blobName(h), nil, tmp))
                    } else {
                        payloads.append((TeamCache.blobName(h), try store.readBlob(h), nil))
                    }
                }
                let moved = Atomic<Int64>(0)
                let frozen = payloads
                try Parallel.forEach(frozen.count, width: width) { (j: Int) throws(RemoteError) in
                    let p = frozen[j]
                    if let b = p.bytes {
                        _ = try s3.put(b, bucket: loc.bucket, key: loc.key(p.name), ifNoneMatch: true)
                        moved.add(Int64(b.count), ordering: .relaxed)
                    } else if let f = p.file {
                        _ = try s3.upload(file: f, bucket: loc.bucket, key: loc.key(p.name), ifNoneMatch: true)
                        var st = stat()
                        moved.add(stat(f, &st) == 0 ? Int64(st.st_size) : 0, ordering: .relaxed)
                    }
                }
                bytesOut = moved.load(ordering: .relaxed)
                // Manifests only after every blob they name is in place; the run-id pointers
                // beside them (each names a manifest, which is what is checked).
                var objects: [(name: String, body: [UInt8])] = []
                for m in part {
                    objects.append((m.name, m.envelope))
                    let pointer: JSONValue = ["key": .string(m.record.key), "manifest": .string(m.name)]
                    objects.append(("runs/\(m.record.runId).json", Array(pointer.canonical.utf8)))
                }
                let frozenObjects = objects
                try Parallel.forEach(frozenObjects.count, width: width) { (j: Int) throws(RemoteError) in
                    _ = try s3.put(frozenObjects[j].body, bucket: loc.bucket, key: loc.key(frozenObjects[j].name), ifNoneMatch: true)
                }
            } else {
                for h in blobs { bytesOut += (try? blobSizeFromStore(h)) ?? 0 }
            }
            sent.formUnion(needed)
            s.blobs += blobs.count
            s.bytes += bytesOut + Int64(part.reduce(0) { $0 + $1.envelope.count })
            s.pushed += part.count
            progress(Progress(phase: "push", done: s.pushed, total: todo.count, bytes: s.bytes))
        }
        s.seconds = Clock.monotonic() - t0
        return s
    }

    /// Why a run cannot be pushed, or nil when it can.
    static func unpushable(_ r: RunRecord) -> String? {
        if r.status != .succeeded { return "it \(r.status.rawValue); only succeeded runs are shared" }
        if r.invalidatedReason != nil { return "it was invalidated (\(r.invalidatedReason ?? ""))" }
        if r.outputsEvictedAt != nil { return "its outputs were evicted by `repro cache gc`" }
        if r.origin != nil { return "it was pulled from a remote; only its producer signs it" }
        return nil
    }

    func blobSizeFromStore(_ h: String) throws -> Int64 {
        try store.blobSize(h) ?? Int64(store.readBlob(h).count)
    }

    func blobSizes(_ r: RunRecord) throws -> [String: Int64] {
        var sizes: [String: Int64] = [:]
        for o in r.outputs { sizes[o.sha256] = o.size }
        for h in r.blobHashes where sizes[h] == nil { sizes[h] = try blobSizeFromStore(h) }
        return sizes
    }

    // MARK: pull
}
