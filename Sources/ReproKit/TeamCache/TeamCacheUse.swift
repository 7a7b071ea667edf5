import Crypto
import Foundation
import ReproSupport
import ReproRemote
import ReproStore

/// How `repro run` and `repro sweep` use the team cache (`cache.remote`): a local miss is
/// looked up on the remote before anything is computed and, with `write: true`, a computed
/// result is pushed. A remote that cannot be used is said once, loudly, and the command goes on
/// locally (or stops, with `read: true`): never a silent miss.
final class TeamCacheUse {
    let settings: TeamCacheSettings
    let cache: TeamCache?
    let log: (String) -> Void
    /// Set once the remote failed: no second attempt (and no second warning) in this command.
    private var broken = false

    /// Nil when no remote is set up for runs. A remote that is configured but cannot even be
    /// set up (a bad trusted key file, say) is a config error: exit 2.
    static func open(config: StoreConfig, store: Store, repoRoot: String, environment: [String: String], log: @escaping (String) -> Void)
        throws -> TeamCacheUse?
    {
        if environment["REPRO_NO_REMOTE"] == "1" { return nil }
        noticeVanishedRemotes(config: config, storeRoot: store.root, log: log)
        guard let remote = try config.runRemote() else { return nil }
        let cache = try TeamCache(remote: remote, store: store, config: config, repoRoot: repoRoot, environment: environment)
        if let why = config.teamCache.unaccepted { log("WARNING: cache.remote.write and cache.signing_key are not used: " + why) }
        return TeamCacheUse(settings: config.teamCache, cache: cache, log: log)
    }

    /// The remotes configured the last time a run looked: one that is gone now (an old commit
    /// checked out, whose `.repro.yaml` predates it) is said once, not silently missed.
    static func noticeVanishedRemotes(config: StoreConfig, storeRoot: String, log: (String) -> Void) {
        let file = storeRoot + "/known-remotes.json"
        let now = config.remotes.mapValues { JSONValue.string($0.location.description) }
        let before = (try? FileIO.readAll(file, limit: 1 << 20)).flatMap { try? JSONParser.parse($0) }?.objectValue ?? [:]
        for (name, url) in before.sorted(by: { $0.key < $1.key }) where now[name] == nil {
            let u = url.stringValue ?? "?"
            log("note: remote '\(name)' (\(u)) was configured before and is not now (the .repro.yaml of this commit does not name it), "
                + "so results it holds are not looked up. To keep it whatever commit is checked out: `repro remote add \(name) \(u) --local`")
        }
        guard before != now else { return }
        // Best effort: a read-only store must not fail a run over this note.
        try? FileIO.writeAtomically(Array(JSONValue.object(now).canonical.utf8), to: file, sync: false)
    }

    init(settings: TeamCacheSettings, cache: TeamCache?, log: @escaping (String) -> Void) {
        self.settings = settings
        self.cache = cache
        self.log = log
    }

    var reads: Bool { settings.read != .off && cache != nil }

    /// Pulls what the remote has for these keys (trusted manifests only). Returns how many runs
    /// were added to the store.
    @discardableResult
    func lookup(_ keys: [String]) throws -> Int {
        guard reads, !broken, let cache, !keys.isEmpty else { return 0 }
        do {
            let s = try cache.pull(keys: keys)
            if s.pulled > 0 { log("team cache: pulled \(s.pulled) result(s) from \(cache.label)") }
            for (_, reason) in s.untrusted.prefix(5) { log("team cache: not served: \(reason)") }
            for (name, reason) in s.rejected.prefix(5) { log("team cache: REJECTED \(name): \(reason)") }
            for f in s.findings { log("team cache: reproducibility finding for key \(f.key.prefix(12)): \(f.results.count) different results; `repro audit \(f.key.prefix(12))` shows them") }
            return s.pulled
        } catch let e as RemoteError {
            broken = true
            if settings.read == .always { throw e }
            log("WARNING: team cache \(cache.label) cannot be read: \(e.message). Going on without it (results are computed locally); set cache.remote.read: true to make this an error")
            return 0
        }
    }

    /// Says how many of these keys the remote could answer, pulling nothing (`--dry-run`).
    func preview(_ keys: [String]) {
        guard reads, let cache, !keys.isEmpty else { return }
        do {
            let s = try cache.pull(keys: keys, dryRun: true)
            log("team cache: \(s.pulled) of \(keys.count) point(s) to run would be pulled from \(cache.label) (\(s.bytes) bytes)")
        } catch {
            log("WARNING: team cache \(cache.label) cannot be read: \(error)")
        }
    }

    /// Pushes computed results when `cache.remote.write` is on; a failure is said, not thrown:
    /// the results are safe in the local store and `repro push` sends them later.
    func publish(_ runs: [RunRecord], store: Store, repoRoot: String) {
        guard settings.write, let cache, !runs.isEmpty else { return }
        let pushable = runs.filter { TeamCache.unpushable($0) == nil }
        guard !pushable.isEmpty else { return }
        guard let keyPath = settings.signingKey else {
            log("WARNING: cache.remote.write is on but no cache.signing_key is set; \(pushable.count) result(s) not pushed to \(cache.label). Make a key with `repro keygen --out FILE` and set cache.signing_key in .repro/config.yaml")
            return
        }
        do {
            let key = try Attestation.loadPrivate(TrustedKeys.resolve(keyPath, base: repoRoot))
            let s = try cache.push(pushable, signingKey: key)
            if s.pushed > 0 { log("team cache: pushed \(s.pushed) result(s) to \(cache.label)") }
        } catch {
            log("WARNING: pushing to team cache \(cache.label) failed: \(error). The results are in the local store; `repro push` sends them later")
        }
    }
}
