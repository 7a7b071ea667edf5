import Foundation
import ReproExecution
import ReproSupport
import ReproRemote

/// One shared result cache (`remotes:` in `.repro.yaml`): a bucket and prefix, reached with the
/// standard AWS settings (environment, profile, `~/.aws/credentials`); never a secret here.
public struct RemoteSettings: Sendable {
    public var name: String
    public var location: S3Location
    /// An S3-compatible endpoint instead of AWS (else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL).
    public var endpoint: String?
    public var region: String?
    /// The remote `repro push` and `repro pull` use without `--remote`.
    public var isDefault = false
    public var origin: String
    /// Set when its endpoint comes from a committed .repro.yaml not yet accepted.
    public var unaccepted: String?

    public init(name: String, location: S3Location, endpoint: String? = nil, region: String? = nil, isDefault: Bool = false, origin: String) {
        self.name = name
        self.location = location
        self.endpoint = endpoint
        self.region = region
        self.isDefault = isDefault
        self.origin = origin
    }

    static func parse(name: String, _ node: SpecNode) throws(ConfigError) -> RemoteSettings {
        guard RemoteSettings.isValidName(name) else {
            throw ConfigError(at: node.origin, "remote name '\(name)' may hold only letters, digits, '-' and '_'")
        }
        var url: String?
        var pairs: [(key: String, value: SpecNode)] = []
        switch node {
        case .scalar(let t, _, _): url = t  // `origin: s3://bucket/prefix`
        case .mapping(let p, _): pairs = p
        case .sequence: throw ConfigError(at: node.origin, key: "remotes.\(name)", "must be a mapping such as {url: s3://bucket/prefix}")
        }
        var endpoint: String?
        var region: String?
        var isDefault = false
        for (k, v) in pairs {
            guard case .scalar(let t, _, _) = v, !t.isEmpty else {
                throw ConfigError(at: v.origin, key: "remotes.\(name).\(k)", "must be a single, non-empty value")
            }
            switch k {
            case "url": url = t
            case "endpoint": endpoint = t
            case "region": region = t
            case "default":
                guard let b = YAMLCore.bool(t) else { throw ConfigError(at: v.origin, key: "remotes.\(name).default", "must be true or false") }
                isDefault = b
            default:
                if BackendSettings.secretKeys.contains(k.lowercased()) {
                    throw ConfigError(
                        "\(v.origin): remotes.\(name).\(k): secrets do not belong in a config file; use the AWS environment or ~/.aws/credentials")
                }
                throw ConfigError(at: v.origin, "unknown key 'remotes.\(name).\(k)'; known: url, endpoint, region, default")
            }
        }
        guard let url else { throw ConfigError(at: node.origin, key: "remotes.\(name)", "needs url: s3://bucket/prefix") }
        let loc = try S3Location(parsing: url, what: "\(node.origin): remotes.\(name).url")
        return RemoteSettings(name: name, location: loc, endpoint: endpoint, region: region, isDefault: isDefault, origin: "\(node.origin)")
    }

    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64 && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
    }
}

/// `cache:` keys about the team cache.
public struct TeamCacheSettings: Sendable {
    /// When `repro run` / `repro sweep` look a local miss up on the remote.
    public enum Read: String, Sendable {
        /// Look up; a remote that cannot be reached is reported once and the run goes on locally.
        case auto
        /// Look up; a remote that cannot be reached is an error (exit 6): for CI that must not
        /// recompute what the team already has.
        case always = "true"
        case off = "false"
    }
    /// `cache.remote.name`: the remote runs read from (default: the default remote).
    public var remoteName: String?
    public var read: Read = .auto
    /// Push each computed result (a cluster or CI runner that produces for the team).
    public var write = false
    /// The private key that signs pushed manifests (local config: it names a file, never a key).
    public var signingKey: String?
    /// Whose results are accepted: PEM files (relative to the repository) or inline keys.
    public var trustedKeys: [(entry: String, origin: String)] = []
    /// Whether `cache.remote` was written at all (read: auto needs a remote to mean anything).
    public var remoteConfigured = false
    /// Set when signing_key or write came from a committed .repro.yaml not yet accepted.
    public var unaccepted: String?

    public init() {}

    mutating func parseRemote(_ node: SpecNode) throws(ConfigError) {
        remoteConfigured = true
        switch node {
        case .scalar(let t, _, _):
            remoteName = t
            return
        case .mapping(let pairs, _):
            for (k, v) in pairs {
                guard case .scalar(let t, _, _) = v, !t.isEmpty else {
                    throw ConfigError(at: v.origin, key: "cache.remote.\(k)", "must be a single value")
                }
                switch k {
                case "name": remoteName = t
                case "read":
                    if t == "auto" {
                        read = .auto
                    } else if let b = YAMLCore.bool(t) {
                        read = b ? .always : .off
                    } else {
                        throw ConfigError(at: v.origin, key: "cache.remote.read", "must be auto, true or false")
                    }
                case "write":
                    guard let b = YAMLCore.bool(t) else { throw ConfigError(at: v.origin, key: "cache.remote.write", "must be true or false") }
                    write = b
                default:
                    throw ConfigError(at: v.origin, "unknown key 'cache.remote.\(k)'; known: name, read, write")
                }
            }
        case .sequence:
            throw ConfigError(at: node.origin, key: "cache.remote", "must be a mapping such as {name: origin, read: auto, write: false}")
        }
    }

    mutating func parseTrustedKeys(_ node: SpecNode) throws(ConfigError) {
        var items: [SpecNode] = []
        switch node {
        case .sequence(let s, _): items = s
        case .scalar: items = [node]
        case .mapping: throw ConfigError(at: node.origin, key: "cache.trusted_keys", "must be a list of public key files or keys")
        }
        for item in items {
            guard case .scalar(let t, _, _) = item, !t.isEmpty else {
                throw ConfigError(at: item.origin, "each cache.trusted_keys entry must be a public key file (PEM) or a key")
            }
            trustedKeys.append((t, "\(item.origin)"))
        }
    }
}

extension StoreConfig {
    /// The remote named `name`, else the default one: `--remote`, then the remote marked
    /// `default: true`, then `cache.remote.name`, then the only remote.
    public func remote(named name: String?) throws(ConfigError) -> RemoteSettings {
        if let name {
            guard let r = remotes[name] else {
                let known = remotes.keys.sorted()
                throw ConfigError(
                    "no remote named '\(name)'"
                        + (known.isEmpty ? "; add one with `repro remote add \(name) s3://bucket/prefix`" : "; configured: \(known.joined(separator: ", "))"))
            }
            return r
        }
        if let d = remotes.values.first(where: \.isDefault) { return d }
        if let n = teamCache.remoteName, let r = remotes[n] { return r }
        if remotes.count == 1, let only = remotes.values.first { return only }
        if remotes.isEmpty {
            throw ConfigError("no remote is configured; add one with `repro remote add origin s3://bucket/prefix --default`")
        }
        throw ConfigError(
            "several remotes (\(remotes.keys.sorted().joined(separator: ", "))) and none is the default; pass --remote NAME or mark one with `repro remote add NAME URL --default`")
    }

    /// The remote `repro run` and `repro sweep` read from, when reading is on; nil when no
    /// remote is set up for runs.
    public func runRemote() throws(ConfigError) -> RemoteSettings? {
        guard teamCache.read != .off || teamCache.write else { return nil }
        if let n = teamCache.remoteName {
            guard let r = remotes[n] else {
                throw ConfigError("cache.remote.name is '\(n)' but no remote has that name; add it with `repro remote add \(n) s3://bucket/prefix`")
            }
            return r
        }
        // A default remote means the team wants lookups, unless cache.remote says otherwise.
        return remotes.values.first(where: \.isDefault)
    }
}
