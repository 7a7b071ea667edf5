import Crypto
import Foundation
import Synchronization
import ReproSupport
import ReproRemote
import ReproStore

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

    /// Progress of a push or pull: items done of total, bytes moved.
    public struct Progress: Sendable {
        public var phase: String
        public var done: Int
        public var total: Int
        public var bytes: Int64
    }

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
