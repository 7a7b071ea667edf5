import Crypto
import Foundation
import Synchronization
import ReproSupport
import ReproRemote
import ReproStore

extension TeamCache {
    /// Two or more results for one key that disagree (see `ResultDisagreement`).
    public typealias Finding = ResultDisagreement

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
        /// Manifests not served: unsigned or signed by an unknown key (the reason names the manifest).
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
            throw e.with(
                message: "pulling from \(label) stopped: \(e.message). The \(s.pulled) run(s) pulled before are complete in the store; "
                    + "run the pull again once the remote answers to fetch the rest")
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
            var imports: [(RunRecord, PullOrigin)] = []
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
                let origin = PullOrigin(
                    remote: remote.name, url: remote.location.description, manifest: m.name, signer: m.keyid, trustedAs: m.trustedAs,
                    pushedAt: m.pushedAt, pulledAt: Clock.iso8601(Clock.now()))
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
}
