import Crypto
import Foundation
import Synchronization

/// A team's shared result cache in a bucket:
///
/// ```
/// PREFIX/cas/sha256/HH/HASH                       blobs, raw bytes, named by their SHA-256
/// PREFIX/manifests/HH/KEY/SIGNER-DIGEST.json      one signed manifest per key, producer and result
/// PREFIX/runs/RUN_ID.json                         which manifest holds a run (for `pull RUN`)
/// ```
///
/// Everything is written once with a conditional write and never overwritten: blobs before the
/// manifest that names them, so a manifest never points at a missing blob. Pulls re-hash every
/// byte and accept only manifests signed by a trusted key.
public final class TeamCache {
    public let remote: RemoteSettings
    let s3: S3Client
    let store: Store
    public let trusted: TrustedKeys
    /// Transfers in flight at once.
    public var width = 8
    /// Runs handled per round (bounds memory: their blobs are held between download and store).
    var chunk = 128

    public init(remote: RemoteSettings, store: Store, config: StoreConfig, repoRoot: String, environment: [String: String]) throws {
        if let why = remote.unaccepted { throw ConfigError("remote '\(remote.name)': " + why) }
        self.remote = remote
        self.store = store
        s3 = try S3Client(settings: AWSSettings(environment: environment), region: remote.region, endpoint: remote.endpoint)
        trusted = try TrustedKeys.load(config.teamCache, repoRoot: repoRoot)
    }

    var location: S3Location { remote.location }
    public var label: String { "\(remote.name) (\(remote.location))" }

    static func blobName(_ sha256: String) -> String { "cas/sha256/\(sha256.prefix(2))/\(sha256)" }

    // MARK: listing

    /// The manifest names (relative to the prefix) filed under each key. Few keys: one listing
    /// per key; many: one listing per two-hex-digit shard, filtered.
    public func manifests(forKeys keys: [String]) throws(RemoteError) -> [String: [String]] {
        let wanted = Set(keys)
        let prefixes = wanted.count <= 32 ? wanted.map { CacheManifest.folder(key: $0) } : Set(keys.map { "manifests/\($0.prefix(2))/" }).sorted()
        let found = Mutex<[String: [String]]>([:])
        let (s3, loc) = (s3, location)
        try Parallel.forEach(prefixes.count, width: width) { (i: Int) throws(RemoteError) in
            let objects = try s3.list(bucket: loc.bucket, prefix: loc.key(prefixes[i]))
            var local: [String: [String]] = [:]
            for o in objects {
                let rel = loc.relative(o.key)
                if let k = CacheManifest.key(ofObject: rel), wanted.contains(k) { local[k, default: []].append(rel) }
            }
            found.withLock { f in for (k, v) in local { f[k, default: []] += v } }
        }
        return found.withLock { $0 }.mapValues { $0.sorted() }
    }

    /// Which of these blobs the remote already has: HEAD each when few, else list their shards.
    func presentBlobs(_ hashes: Set<String>) throws(RemoteError) -> Set<String> {
        guard !hashes.isEmpty else { return [] }
        let (s3, loc) = (s3, location)
        let present = Mutex<Set<String>>([])
        if hashes.count <= 48 {
            let list = Array(hashes)
            try Parallel.forEach(list.count, width: width) { (i: Int) throws(RemoteError) in
                if try s3.head(bucket: loc.bucket, key: loc.key(TeamCache.blobName(list[i]))) != nil {
                    _ = present.withLock { $0.insert(list[i]) }
                }
            }
        } else {
            let shards = Set(hashes.map { String($0.prefix(2)) }).sorted()
            try Parallel.forEach(shards.count, width: width) { (i: Int) throws(RemoteError) in
                let objects = try s3.list(bucket: loc.bucket, prefix: loc.key("cas/sha256/\(shards[i])/"))
                let names = Set(objects.map { String($0.key.split(separator: "/").last ?? "") })
                present.withLock { $0.formUnion(names.intersection(hashes)) }
            }
        }
        return present.withLock { $0 }
    }

    // MARK: push

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

    /// Progress of a push or pull: items done of total, bytes moved.
    public struct Progress: Sendable {
        public var phase: String
        public var done: Int
        public var total: Int
        public var bytes: Int64
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
        if r.origin != .null { return "it was pulled from a remote; only its producer signs it" }
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

    /// Two or more results for one key that disagree: a reproducibility finding.
    public struct Finding: Sendable {
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

    public struct PullSummary: Sendable {
        public var remote = ""
        public var dryRun = false
        /// Runs added to the store (or that would be).
        public var pulled = 0
        /// Results on the remote the store already had.
        public var present = 0
        public var blobs = 0
        public var bytes: Int64 = 0
        public var seconds = 0.0
        /// Keys asked for with no manifest on the remote.
        public var missing: [String] = []
        /// Manifests not served: unsigned or signed by an unknown key.
        public var untrusted: [(name: String, reason: String)] = []
        /// Manifests or blobs that failed a check (bad signature, altered blob): never stored.
        public var rejected: [(name: String, reason: String)] = []
        /// Accepted without a trusted signature because of --trust-unsigned.
        public var acceptedUntrusted = 0
        public var findings: [Finding] = []
        public var pulledKeys: [String] = []

        public var json: JSONValue {
            [
                "remote": .string(remote), "dry_run": .bool(dryRun), "pulled": .int(Int64(pulled)), "already_present": .int(Int64(present)),
                "blobs": .int(Int64(blobs)), "bytes": .int(bytes), "seconds": .double(seconds),
                "missing": .array(missing.map { .string($0) }),
                "untrusted": .array(untrusted.map { ["manifest": .string($0.name), "reason": .string($0.reason)] }),
                "rejected": .array(rejected.map { ["manifest": .string($0.name), "reason": .string($0.reason)] }),
                "accepted_untrusted": .int(Int64(acceptedUntrusted)), "findings": .array(findings.map(\.json)),
            ]
        }
    }

    /// Pulls every trusted result for these keys that the store does not have yet: manifests
    /// checked, blobs re-hashed, each run stored with its blobs in one transaction. If the
    /// remote stops answering, what was pulled so far stays complete and the error says so.
    public func pull(
        keys: [String], trustUnsigned: Bool = false, dryRun: Bool = false, progress: @escaping (Progress) -> Void = { _ in }
    ) throws -> PullSummary {
        let t0 = Clock.monotonic()
        var s = PullSummary(remote: label, dryRun: dryRun)
        let unique = Array(Set(keys)).sorted()
        let listed = try manifests(forKeys: unique)
        s.missing = unique.filter { listed[$0] == nil }
        // A manifest whose outputs digest the store already has for that key brings nothing new.
        let known = try store.outputDigests(forKeys: Array(listed.keys))
        var names: [String] = []
        for (k, list) in listed.sorted(by: { $0.key < $1.key }) {
            for n in list {
                let digest = n.split(separator: "-").last.map { String($0.dropLast(5)) } ?? ""
                if known[k]?.contains(where: { $0.hasPrefix(digest) }) == true { s.present += 1 } else { names.append(n) }
            }
        }
        var i = 0
        var done = 0
        do {
            while i < names.count {
                let part = Array(names[i..<min(i + chunk, names.count)])
                i += part.count
                try pullChunk(part, trustUnsigned: trustUnsigned, dryRun: dryRun, into: &s)
                done += part.count
                progress(Progress(phase: "pull", done: done, total: names.count, bytes: s.bytes))
            }
        } catch let e as RemoteError {
            throw RemoteError(
                "pulling from \(label) stopped: \(e.message). The \(s.pulled) run(s) pulled before are complete in the store; "
                    + "run the pull again once the remote answers to fetch the rest", kind: e.kind, httpStatus: e.httpStatus, curlCode: e.curlCode)
        }
        s.findings = try store.disagreements(forKeys: s.pulledKeys + unique.filter { listed[$0] != nil })
        s.seconds = Clock.monotonic() - t0
        return s
    }

    private func pullChunk(_ names: [String], trustUnsigned: Bool, dryRun: Bool, into s: inout PullSummary) throws {
        let (s3, loc, trusted) = (s3, location, trusted)
        let fetched = Mutex<[String: CappedObject]>([:])
        try Parallel.forEach(names.count, width: width) { (j: Int) throws(RemoteError) in
            let got = try s3.getCapped(bucket: loc.bucket, key: loc.key(names[j]), maxBytes: CacheManifest.maxBytes)
            fetched.withLock { $0[names[j]] = got }
        }
        let bodies = fetched.withLock { $0 }
        var accepted: [CacheManifest] = []
        for n in names {
            let body: [UInt8]
            switch bodies[n] {
            case .bytes(let b)?: body = b
            case .tooLarge?:
                // Refused; the pull goes on without it.
                s.rejected.append((n, "the manifest is larger than \(CacheManifest.maxBytes) bytes; not read"))
                continue
            case .missing?, nil: continue  // removed by a gc since the listing
            }
            switch CacheManifest.verify(body, name: n, trusted: trusted) {
            case .trusted(let m): accepted.append(m)
            case .untrusted(var m, let reason, let unsigned):
                if trustUnsigned {
                    m.trustedAs = unsigned ? "unsigned, accepted with --trust-unsigned" : "untrusted key, accepted with --trust-unsigned"
                    accepted.append(m)
                    s.acceptedUntrusted += 1
                } else {
                    s.untrusted.append((n, reason))
                }
            case .rejected(let reason): s.rejected.append((n, reason))
            }
        }
        // One run id is one run: the same run signed again with a rotated key, or a manifest
        // copied to a second name, is kept once (a trusted signature first).
        var seenRuns = Set<String>()
        var unique: [CacheManifest] = []
        for m in accepted.sorted(by: { ($0.keyid == nil ? 1 : 0, $0.name) < ($1.keyid == nil ? 1 : 0, $1.name) }) {
            if seenRuns.insert(m.record.runId).inserted { unique.append(m) } else { s.present += 1 }
        }
        accepted = unique
        // Runs this store already holds (same run id) are not pulled twice.
        let existing = try store.existingRunIds(accepted.map(\.record.runId))
        s.present += accepted.filter { existing.contains($0.record.runId) }.count
        accepted.removeAll { existing.contains($0.record.runId) }
        // A blob already here must have the size the manifest claims: naming a local blob by
        // hash alone (another run's output) with a made-up size is a forged claim.
        var sizes: [String: Int64] = [:]
        accepted.removeAll { m in
            for b in m.blobs {
                if let other = sizes[b.sha256], other != b.size {
                    s.rejected.append((m.name, "blob \(b.sha256.prefix(12)) is claimed with \(b.size) bytes, another manifest says \(other)"))
                    return true
                }
                if store.hasBlob(b.sha256), let local = try? store.blobSize(b.sha256), local != b.size {
                    s.rejected.append((m.name, "blob \(b.sha256.prefix(12)) is claimed with \(b.size) bytes but the one here has \(local)"))
                    return true
                }
            }
            for b in m.blobs { sizes[b.sha256] = b.size }
            return false
        }
        let needed = sizes.keys.filter { !store.hasBlob($0) }.sorted()
        let expected = sizes
        if dryRun {
            s.pulled += accepted.count
            s.blobs += needed.count
            s.bytes += needed.reduce(0) { $0 + (sizes[$1] ?? 0) }
            s.pulledKeys += accepted.map(\.record.key)
            return
        }
        // Download and re-hash; large blobs through a temp file.
        let tmpDir = store.root + "/tmp"
        let got = Mutex<[String: Result<Downloaded, RemoteError>]>([:])
        try Parallel.forEach(needed.count, width: width) { (j: Int) throws(RemoteError) in
            let h = needed[j]
            let r = Result { () throws(RemoteError) -> Downloaded in
                try TeamCache.download(h, expectedSize: expected[h] ?? 0, s3: s3, loc: loc, tmpDir: tmpDir)
            }
            // A blob that is missing or altered is that manifest's problem, not the pull's.
            if case .failure(let e) = r, e.kind != .integrity && e.kind != .notFound { throw e }
            got.withLock { $0[h] = r }
        }
        let results = got.withLock { $0 }
        defer {
            for case .success(let d) in results.values { if let f = d.file { unlink(f) } }
        }
        var bad: [String: String] = [:]
        for (h, r) in results { if case .failure(let e) = r { bad[h] = e.message } }
        try store.withBlobWriteLock {
            var refs: [String: BlobRef] = [:]
            var imports: [(RunRecord, JSONValue)] = []
            for m in accepted {
                if let problem = m.blobs.lazy.compactMap({ bad[$0.sha256] }).first {
                    s.rejected.append((m.name, problem))
                    continue
                }
                for b in m.blobs where refs[b.sha256] == nil && !store.hasBlob(b.sha256) {
                    guard case .success(let d) = results[b.sha256] else { continue }
                    let ref = try d.file.map { f throws in try store.putFile(atPath: f) } ?? store.putBytes(d.bytes)
                    // putFile hashes again; the name must still be what was checked.
                    guard ref.sha256 == b.sha256 else { throw StoreError("blob \(b.sha256.prefix(12)) changed on disk while being stored") }
                    refs[b.sha256] = ref
                }
                let origin: JSONValue = [
                    "remote": .string(remote.name), "url": .string(remote.location.description), "manifest": .string(m.name),
                    "signer": m.keyid.json, "trusted_as": .string(m.trustedAs), "pushed_at": .string(m.pushedAt),
                    "pulled_at": .string(Clock.iso8601(Clock.now())),
                ]
                imports.append((m.record, origin))
                s.bytes += m.blobs.reduce(0) { $0 + (results[$1.sha256] != nil ? $1.size : 0) }
            }
            let failed = try store.importRuns(imports, blobs: Array(refs.values))
            for (runId, why) in failed {
                s.rejected.append((accepted.first { $0.record.runId == runId }?.name ?? runId, "not stored: \(why)"))
            }
            let stored = imports.filter { failed[$0.0.runId] == nil }
            s.blobs += refs.count
            s.pulled += stored.count
            s.pulledKeys += stored.map(\.0.key)
        }
    }

    struct Downloaded: Sendable {
        var bytes: [UInt8] = []
        var file: String?
    }

    /// Fetches one blob and checks it against its name before anyone stores it.
    static func download(_ h: String, expectedSize: Int64, s3: S3Client, loc: S3Location, tmpDir: String) throws(RemoteError) -> Downloaded {
        let key = loc.key(blobName(h))
        if expectedSize > 8 << 20 {
            let tmp = tmpDir + "/pull-\(getpid())-\(h.prefix(16))-\(UInt32.random(in: 0...UInt32.max))"
            guard try s3.downloadIfPresent(bucket: loc.bucket, key: key, to: tmp, maxBytes: expectedSize) else {
                throw RemoteError("blob \(h.prefix(12)) is missing from \(loc)", kind: .notFound)
            }
            guard let (got, size) = try? Hashing.sha256OfFile(atPath: tmp), got == h, size == expectedSize else {
                unlink(tmp)
                throw RemoteError("blob \(h.prefix(12)) in \(loc) does not hash to its name (altered in the bucket); not stored", kind: .integrity)
            }
            return Downloaded(file: tmp)
        }
        guard let bytes = try s3.getIfPresent(bucket: loc.bucket, key: key, maxBytes: expectedSize) else {
            throw RemoteError("blob \(h.prefix(12)) is missing from \(loc)", kind: .notFound)
        }
        guard Hashing.sha256Hex(bytes) == h, Int64(bytes.count) == expectedSize else {
            throw RemoteError("blob \(h.prefix(12)) in \(loc) does not hash to its name (altered in the bucket); not stored", kind: .integrity)
        }
        return Downloaded(bytes: bytes)
    }

    // MARK: lookups by run id and key prefix

    /// The key of a run pushed under this id (`runs/RUN_ID.json`), or nil.
    public func key(ofRun runId: String) throws(RemoteError) -> String? {
        guard RunId.isValid(runId),
            let b = try s3.getIfPresent(bucket: location.bucket, key: location.key("runs/\(runId).json")),
            let k = (try? JSONParser.parse(b))?["key"]?.stringValue, Hashing.isSHA256Hex(k)
        else { return nil }
        return k
    }

    /// Every key on the remote starting with this hex prefix (at least 2 digits).
    public func keys(withPrefix prefix: String) throws(RemoteError) -> [String] {
        let objects = try s3.list(bucket: location.bucket, prefix: location.key("manifests/\(prefix.prefix(2))/\(prefix)"))
        let keys = objects.compactMap { CacheManifest.key(ofObject: location.relative($0.key)) }
        return Array(Set(keys)).sorted()
    }
}

// MARK: gc

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
