import Crypto
import Foundation
import ReproSupport
import ReproGit
import ReproRemote
import ReproStore

/// `repro push`, `repro pull`, `repro remote gc` below the CLI: what a selection means and
/// which remote and key to use.
public enum TeamCacheCommands {
    /// The repository, its store (made when missing: a fresh clone pulls before it runs) and
    /// the merged config.
    public struct Context {
        public let repo: GitRepository
        public let store: Store
        public let config: StoreConfig
        public let environment: [String: String]
    }

    public static func context(from dir: String, environment: [String: String]) throws -> Context {
        let repo = try GitRepository(discoveringFrom: dir)
        let store = try Store(root: Store.defaultRoot(repoRoot: repo.workdir, environment: environment))
        RepoIgnore.ensure(repo: repo, storeRoot: store.root)
        let config = try StoreConfig.load(storeRoot: store.root, repoRoot: repo.workdir)
        return Context(repo: repo, store: store, config: config, environment: environment)
    }

    /// A remote with no endpoint goes to AWS S3. When a backend of this project names an
    /// S3-compatible endpoint, the remote most likely lives there too: the hint says so.
    public static func endpointHint(config: StoreConfig, remoteEndpoint: String?, environment: [String: String]) -> String? {
        guard remoteEndpoint == nil, environment["AWS_ENDPOINT_URL_S3"] == nil, environment["AWS_ENDPOINT_URL"] == nil else { return nil }
        guard let (name, endpoint) = config.backends.sorted(by: { $0.key < $1.key }).lazy
            .compactMap({ b in b.value.options.objectStoreEndpoint.map { (b.key, $0) } }).first
        else { return nil }
        return "this remote has no endpoint, so it is reached at AWS S3, while backend \(name) uses the endpoint \(endpoint); "
            + "if the bucket lives there, add it: `repro remote add NAME URL --endpoint \(endpoint)` (or set remotes.NAME.endpoint)"
    }

    /// A failure to reach a remote, with the endpoint hint when the host could not be resolved.
    public static func explained(_ error: any Error, _ c: Context, remote name: String?) -> any Error {
        guard let e = error as? RemoteError, e.curlCode == 6 || e.kind == .unreachable,
            let remote = try? c.config.remote(named: name),
            let hint = endpointHint(config: c.config, remoteEndpoint: remote.endpoint, environment: c.environment)
        else { return error }
        return e.with(message: e.message + "\n" + hint)
    }

    public static func open(_ c: Context, remote name: String?) throws -> TeamCache {
        let remote = try c.config.remote(named: name)
        return try TeamCache(remote: remote, store: c.store, config: c.config, repoRoot: c.repo.workdir, environment: c.environment)
    }

    /// The signing key: `--key FILE`, else `cache.signing_key`; nil with `unsigned`.
    public static func signingKey(option: String?, unsigned: Bool, _ c: Context) throws -> Curve25519.Signing.PrivateKey? {
        if unsigned {
            guard option == nil else { throw ConfigError("--key and --unsigned contradict each other; choose one") }
            return nil
        }
        guard let path = option ?? c.config.teamCache.signingKey else {
            throw ConfigError(
                "pushed results are signed, and no key is set: make one with `repro keygen --out ~/.repro/keys/me`, then pass --key FILE or set cache.signing_key in .repro/config.yaml (and add FILE.pub to cache.trusted_keys in .repro.yaml so the team accepts it)")
        }
        do {
            return try Attestation.loadPrivate(TrustedKeys.resolve(path, base: option != nil ? FileManager.default.currentDirectoryPath : c.repo.workdir))
        } catch {
            throw ConfigError("the signing key: \(error.message)")
        }
    }

    /// What one command-line selection names.
    enum Selection {
        case spec(String)
        case sweep(String)
        case key(String)
        case keyPrefix(String)
        case run(String)
    }

    static func classify(_ arg: String) throws -> Selection {
        if FileManager.default.fileExists(atPath: arg) {
            let text = (try? String(contentsOfFile: arg, encoding: .utf8)) ?? ""
            if case .mapping(let pairs, _) = try SpecNode.parse(text, file: arg), pairs.contains(where: { $0.key == "base" }) {
                return .sweep(arg)
            }
            return .spec(arg)
        }
        let lower = arg.lowercased()
        if Hashing.isSHA256Hex(lower) { return .key(lower) }
        if lower.count >= 4, lower.allSatisfy(\.isHexDigit) { return .keyPrefix(lower) }
        if !arg.isEmpty, arg.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) { return .run(arg) }
        throw ConfigError("'\(arg)' is not a spec or sweep file, a cache key or a run id")
    }

    /// `overrides`: `--set key=value`, as `repro run` takes them (a run made with --set is
    /// pushed or pulled by naming the same spec and --set).
    static func keys(ofSpec path: String, environment: [String: String], overrides: [String] = []) throws -> [String] {
        var request = RunRequest(specPath: path, environment: environment)
        request.overrides = overrides
        return [try Runner(request).prepare().key]
    }

    static func keys(ofSweep path: String, environment: [String: String]) throws -> [String] {
        try SweepRunner(SweepRequest(sweepPath: path, environment: environment), progress: { _, _ in }).keys()
    }

    /// The runs a push selection names: the servable result of a spec's or a sweep's keys, runs
    /// by id, every run of a key; `all`: every succeeded run. Returns the runs and what was
    /// asked for but is not in the store.
    public static func runsToPush(_ args: [String], all: Bool, overrides: [String] = [], _ c: Context) throws
        -> (runs: [RunRecord], notFound: [String])
    {
        if all { return (try c.store.runs(inStatus: .succeeded), []) }
        guard !args.isEmpty else {
            throw ConfigError("say what to push: spec or sweep files, run ids or keys, or --all")
        }
        var runs: [RunRecord] = []
        var notFound: [String] = []
        func byKeys(_ keys: [String], what: String) throws {
            let found = try c.store.servableRuns(forKeys: keys, maxAge: 100 * 365 * 86400)
            runs += keys.compactMap { found[$0] }
            let missing = keys.filter { found[$0] == nil }
            if !missing.isEmpty { notFound.append("\(what): \(missing.count) of \(keys.count) key(s) not computed here") }
        }
        for a in args {
            switch try classify(a) {
            case .spec(let p): try byKeys(try keys(ofSpec: p, environment: c.environment, overrides: overrides), what: p)
            case .sweep(let p): try byKeys(try keys(ofSweep: p, environment: c.environment), what: p)
            case .key(let k): try byKeys([k], what: "key \(k.prefix(12))")
            case .keyPrefix(let k): try byKeys([try c.store.resolveKey(prefix: k)], what: "key \(k)")
            case .run(let id): runs.append(try c.store.run(matching: id))
            }
        }
        return (runs, notFound)
    }

    /// The keys a pull selection names (a run id and a key prefix are looked up on the remote).
    public static func keysToPull(_ args: [String], cache: TeamCache, overrides: [String] = [], _ c: Context) throws
        -> (keys: [String], notFound: [String])
    {
        guard !args.isEmpty else {
            throw ConfigError("say what to pull: spec or sweep files, cache keys or run ids (pulling everything is never what one wants)")
        }
        var keys: [String] = []
        var notFound: [String] = []
        for a in args {
            switch try classify(a) {
            case .spec(let p): keys += try self.keys(ofSpec: p, environment: c.environment, overrides: overrides)
            case .sweep(let p): keys += try self.keys(ofSweep: p, environment: c.environment)
            case .key(let k): keys.append(k)
            case .keyPrefix(let k):
                let found = try cache.keys(withPrefix: k)
                if found.isEmpty { notFound.append("key \(k)") }
                if found.count > 1 {
                    throw ConfigError("key prefix '\(k)' matches \(found.count) keys on \(cache.label); give more characters")
                }
                keys += found
            case .run(let id):
                if let k = try cache.key(ofRun: id) { keys.append(k) } else { notFound.append("run \(id)") }
            }
        }
        return (keys, notFound)
    }
}
