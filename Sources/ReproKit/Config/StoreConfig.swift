import Foundation
import ReproExecution
import ReproSupport

/// Settings, all optional, from the project file `.repro.yaml` at the repository root
/// (committed: the team shares it) overridden key by key by the local `.repro/config.yaml`.
/// Same keys in both; secrets in neither (tokens and keys come from the environment or files
/// named here).
///
/// ```yaml
/// cache:
///   max_age: 30d     # entries older than this are not served and count as expired
/// slurm:             # the built-in `slurm` backend (a shared folder with the nodes)
///   workdir: /shared/scratch/me/repro   # task directories; must be visible to the nodes
///   repro_path: /shared/bin/repro       # the repro the nodes run (default: this one)
///   sbatch_options: ["--constraint=avx2"]
///   max_array_size: 1000                # default: the cluster's MaxArraySize - 1
///   max_parallel: 0                     # array throttle (%N); 0 = no limit
///   poll_interval: 2s
///   max_retries: 2                      # resubmissions after NODE_FAIL or PREEMPTED
/// backends:          # named backends: `--backend cloud`, `backend: cloud`
///   cloud:
///     type: slurm-rest                  # or slurm (shared folder), local
///     url: http://127.0.0.1:6820
///     user: reprotest
///     token_env: SLURM_JWT              # or token_file: ~/.slurm-token
///     staging: s3://repro-test/staging
///     repro_path: /opt/repro/bin/repro  # the repro on the nodes
/// ```
public struct StoreConfig: Sendable {
    /// Seconds; the seed ADR's 30-day validity by default.
    public var maxAge: Double = 30 * 86400

    /// The built-in `slurm` backend (`slurm:`).
    public var slurm = SlurmSettings()
    /// Named backends, by name.
    public var backends: [String: BackendSettings] = [:]
    /// The settings added for the team cache and dispatch, behind one reference: every point of
    /// a sweep carries a copy of the config, and 200,000 copies of these fields would cost
    /// tens of megabytes (copy on write keeps the value semantics).
    private final class Extras: @unchecked Sendable {
        var remotes: [String: RemoteSettings] = [:]
        var teamCache = TeamCacheSettings()
        var orchestration = Orchestration()
        var prices: [String: Price] = [:]

        func copy() -> Extras {
            let e = Extras()
            e.remotes = remotes
            e.teamCache = teamCache
            e.orchestration = orchestration
            e.prices = prices
            return e
        }
    }
    private var extras = Extras()
    private mutating func uniqueExtras() -> Extras {
        if !isKnownUniquelyReferenced(&extras) { extras = extras.copy() }
        return extras
    }

    /// Shared result caches, by name (`remotes:`).
    public var remotes: [String: RemoteSettings] {
        get { extras.remotes }
        set { uniqueExtras().remotes = newValue }
    }
    /// How runs use them, and whose results are trusted (`cache.remote`, `cache.trusted_keys`, ...).
    public var teamCache: TeamCacheSettings {
        get { extras.teamCache }
        set { uniqueExtras().teamCache = newValue }
    }
    /// Where `backend: auto` sends runs, budgets, fallback (`orchestration:`).
    public var orchestration: Orchestration {
        get { extras.orchestration }
        set { uniqueExtras().orchestration = newValue }
    }
    /// Prices by backend name or type (`prices:`).
    public var prices: [String: Price] {
        get { extras.prices }
        set { uniqueExtras().prices = newValue }
    }

    public init() {}

    /// How many times a lost task is submitted again on a backend.
    public func maxRetries(backend name: String) -> Int {
        Backends.settings(of: name, config: self)?.options.maxRetries ?? slurm.maxRetries
    }

    /// Reads `.repro.yaml` (beside the store's folder unless `repoRoot` says where) and the
    /// store's `config.yaml`.
    public static func load(storeRoot: String, repoRoot: String? = nil) throws(ConfigError) -> StoreConfig {
        let root = repoRoot ?? (storeRoot.hasSuffix("/.repro") ? String(storeRoot.dropLast(7)) : nil)
        var merged: SpecNode? = nil
        var project: SpecNode? = nil
        var local: SpecNode? = nil
        for path in [root.map { $0 + "/.repro.yaml" }, storeRoot + "/config.yaml"].compactMap({ $0 }) {
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            let node = try SpecNode.parse(String(decoding: data, as: UTF8.self), file: path)
            guard case .mapping = node else {
                throw ConfigError(at: node.origin, "a repro config file must be a mapping with `cache:`, `slurm:`, `backends:` or `remotes:` sections")
            }
            if path.hasSuffix("/.repro.yaml") { project = node } else { local = node }
            merged = merged.map { StoreConfig.merge($0, over: node) } ?? node
        }
        guard let merged else { return StoreConfig() }
        var config = try interpret(merged)
        // Settings that send secrets or results somewhere count from a committed file only once
        // accepted (a cloned repository's .repro.yaml is not the user's word).
        if let project, let root {
            let found = ProjectSecrets.find(in: project, notIn: local)
            // Accepted first (one small file), committed second (opens the repository).
            if !found.isEmpty, !ProjectSecrets.isAccepted(found, storeRoot: storeRoot), ProjectSecrets.isCommitted(repoRoot: root) {
                config.hold(found)
            }
        }
        return config
    }

    /// Settings of the committed file waiting for `repro config trust`; what they belong to
    /// cannot be used until then (and says why).
    public private(set) var unaccepted: [ProjectSecrets.Setting] = []

    mutating func hold(_ settings: [ProjectSecrets.Setting]) {
        unaccepted = settings
        let why = ProjectSecrets.message(settings)
        for s in settings {
            let parts = s.path.split(separator: ".").map(String.init)
            switch parts.first {
            case "backends" where parts.count > 1: backends[parts[1]]?.unaccepted = why
            case "remotes" where parts.count > 1: remotes[parts[1]]?.unaccepted = why
            case "cache":
                if s.path == "cache.signing_key" { teamCache.signingKey = nil }
                if s.path == "cache.remote.write" { teamCache.write = false }
                teamCache.unaccepted = why
            default: continue
            }
        }
    }

    /// `top` over `base`: mappings merge key by key, anything else is replaced.
    static func merge(_ base: SpecNode, over top: SpecNode) -> SpecNode {
        guard case .mapping(let b, _) = base, case .mapping(let t, let origin) = top else { return top }
        var out = b
        for (k, v) in t {
            if let i = out.firstIndex(where: { $0.key == k }) {
                out[i] = (k, merge(out[i].value, over: v))
            } else {
                out.append((k, v))
            }
        }
        return .mapping(out, origin: origin)
    }

    static func interpret(_ root: SpecNode) throws(ConfigError) -> StoreConfig {
        var config = StoreConfig()
        guard case .mapping(let pairs, _) = root else { return config }
        for (key, value) in pairs {
            switch key {
            case "cache":
                guard case .mapping(let cachePairs, _) = value else {
                    throw ConfigError(at: value.origin, "cache must be a mapping such as {max_age: 30d}")
                }
                for (k, v) in cachePairs {
                    switch k {
                    case "max_age":
                        guard case .scalar(let text, _, _) = v, let seconds = DurationText.seconds(text) else {
                            throw ConfigError(at: v.origin, key: "cache.max_age", "must be a duration such as 30d, 12h or 90m")
                        }
                        config.maxAge = seconds
                    case "remote": try config.teamCache.parseRemote(v)
                    case "signing_key":
                        guard case .scalar(let t, _, _) = v, !t.isEmpty else {
                            throw ConfigError(at: v.origin, key: "cache.signing_key", "must name a private key file made by `repro keygen`")
                        }
                        config.teamCache.signingKey = t
                    case "trusted_keys": try config.teamCache.parseTrustedKeys(v)
                    default:
                        throw ConfigError(
                            "\(v.origin): unknown key 'cache.\(k)'; known: cache.max_age, cache.remote, cache.signing_key, cache.trusted_keys")
                    }
                }
            case "slurm":
                config.slurm = try SlurmSettings.parse(value, path: "slurm")
            case "backends":
                guard case .mapping(let named, _) = value else {
                    throw ConfigError(at: value.origin, "backends must be a mapping of names to settings, such as {cloud: {type: slurm-rest, ...}}")
                }
                for (name, node) in named { config.backends[name] = try BackendSettings.parse(name: name, node) }
            case "orchestration": config.orchestration = try Orchestration.parse(value)
            case "prices":
                guard case .mapping(let named, _) = value else {
                    throw ConfigError(at: value.origin, "prices must be a mapping of backend names to prices, such as {local: {watts: 65, per_kwh: 0.30}}")
                }
                for (name, node) in named { config.prices[name] = try Price.parse(name: name, node) }
            case "remotes":
                guard case .mapping(let named, _) = value else {
                    throw ConfigError(at: value.origin, "remotes must be a mapping of names to settings, such as {origin: {url: s3://bucket/prefix}}")
                }
                for (name, node) in named { config.remotes[name] = try RemoteSettings.parse(name: name, node) }
            default:
                throw ConfigError(at: value.origin, "unknown key '\(key)' in the repro config; known: cache, slurm, backends, remotes, orchestration, prices")
            }
        }
        return config
    }
}
