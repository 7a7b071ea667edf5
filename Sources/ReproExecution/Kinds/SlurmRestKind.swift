import Foundation
import ReproSupport

/// `type: slurm-rest`: SLURM over slurmrestd, tasks staged in S3.
public struct SlurmRestSettings: StagedOptions {
    public var origin: String
    /// slurmrestd's base URL.
    public var url = ""
    /// The user jobs run as (X-SLURM-USER-NAME).
    public var user = ""
    /// How the token is sent.
    public enum Auth: String, Sendable, CaseIterable {
        /// X-SLURM-USER-NAME and X-SLURM-USER-TOKEN (slurmrestd's own; the default).
        case userToken = "user-token"
        /// X-SLURM-USER-TOKEN alone (the user is the token's `sun`).
        case token
        /// Authorization: Bearer (AWS PCS).
        case bearer
    }
    public var auth = Auth.userToken
    /// Where the JWT comes from: an environment variable or a file, read at each request; a
    /// command run at most once per token lifetime; or minted from the cluster's key.
    public var tokenEnv: String?
    public var tokenFile: String?
    public var tokenCommand: [String]?
    public var tokenKeyFile: String?
    /// How long a minted token lives.
    public var tokenLifespan: Double = 3600
    /// The POSIX identity a minted token carries (`token_uid`, `token_gid`, `token_gids`).
    public var tokenIdentity: PosixIdentity?
    /// The REST API version (`v0.0.38`, `v0.0.40`, ...); discovered from the server when unset.
    public var apiVersion: String?
    public var partition: String?
    public var maxParallel = 0
    /// Tasks per job array (SLURM's default MaxArraySize is 1001); smaller arrays are used when
    /// the cluster refuses one this large.
    public var maxArraySize = 1000
    /// Shell lines the job runs before the worker (`module load python/3.11`), one per item.
    public var setup: [String] = []
    public var staged = StagedSettings()
}

extension SlurmRestBackend: BackendKind {
    public static let typeName = "slurm-rest"
    public static let traits = BackendTraits(runsInProcess: false, sharesFileSystem: false)

    public static func options(_ r: SettingsReader) throws(ConfigError) -> any BackendOptions {
        var s = SlurmRestSettings(origin: r.origin)
        let specific = [
            "url", "user", "auth", "token_env", "token_file", "token_command", "token_key_file", "token_lifespan", "api_version", "partition",
            "max_parallel", "max_array_size", "setup", "token_uid", "token_gid", "token_gids",
        ]
        var uid: Int64?
        var gid: Int64?
        var gids: [Int64]?
        try r.readStaged(&s.staged, common: StagedSettings.storageKeys + StagedSettings.blobKeys + StagedSettings.workerKeys, specific: specific) {
            (k, v) throws(ConfigError) in
            switch k {
            case "url": s.url = try r.url(v, k)
            case "user": s.user = try r.text(v, k)
            case "token_env": s.tokenEnv = try r.text(v, k)
            case "token_file": s.tokenFile = try r.text(v, k)
            case "auth":
                let a = try r.text(v, k)
                guard let auth = SlurmRestSettings.Auth(rawValue: a) else {
                    throw ConfigError(
                        at: v.origin, key: "backends.\(r.name).auth", "'\(a)' is not one of \(SlurmRestSettings.Auth.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                s.auth = auth
            case "token_command":
                let words: [String]
                do { words = try ShellWords.split(try r.text(v, k)) } catch {
                    throw ConfigError(at: v.origin, key: "backends.\(r.name).token_command", "is not a command line: \(error)")
                }
                guard !words.isEmpty else { throw ConfigError(at: v.origin, key: "backends.\(r.name).token_command", "is empty") }
                s.tokenCommand = words
            case "token_key_file": s.tokenKeyFile = try r.text(v, k)
            case "token_lifespan": s.tokenLifespan = max(60, try r.duration(v, k))
            case "api_version":
                let a = try r.text(v, k)
                guard SlurmREST.supported.contains(a) else {
                    throw ConfigError(at: v.origin, key: "backends.\(r.name).api_version", "'\(a)'; supported: \(SlurmREST.supported.joined(separator: ", "))")
                }
                s.apiVersion = a
            case "partition": s.partition = try SlurmBackend.resourceValue("partition", .string(try r.text(v, k)))
            case "setup": s.setup = try setupLines(v, r)
            case "max_array_size": s.maxArraySize = max(1, try r.count(v, k))
            case "token_uid": uid = Int64(try r.count(v, k))
            case "token_gid": gid = Int64(try r.count(v, k))
            case "token_gids":
                guard case .sequence(let items, _) = v else {
                    throw ConfigError(at: v.origin, key: "backends.\(r.name).token_gids", "must be a list of group ids, such as [1000, 1001]")
                }
                var out: [Int64] = []
                for item in items { out.append(Int64(try r.count(item, k))) }
                gids = out
            default: s.maxParallel = try r.count(v, k)
            }
        }
        // AWS PCS wants the user's POSIX identity in the token; only a token repro mints has it.
        if uid != nil || gid != nil || gids != nil {
            guard let uid, let gid else {
                throw ConfigError(at: r.origin, key: "backends.\(r.name)", "token_uid and token_gid go together (AWS PCS wants both in the token)")
            }
            guard s.tokenKeyFile != nil else {
                throw ConfigError(
                    at: r.origin, key: "backends.\(r.name)", "token_uid, token_gid and token_gids go into tokens repro mints: set token_key_file too")
            }
            s.tokenIdentity = PosixIdentity(uid: uid, gid: gid, gids: gids ?? [gid])
        }
        var missing: [String] = []
        if s.url.isEmpty { missing.append("url") }
        // The user is needed where it is sent or a token is made for it.
        if s.user.isEmpty && (s.auth == .userToken || s.tokenKeyFile != nil) { missing.append("user") }
        if s.staged.staging == nil { missing.append("staging") }
        // Blob staging names its account (Azure CycleCloud clusters have no S3).
        if s.staged.staging?.scheme == "az" && s.staged.storageAccount == nil { missing.append("storage_account") }
        if s.tokenEnv == nil && s.tokenFile == nil && s.tokenCommand == nil && s.tokenKeyFile == nil {
            missing.append("token_env, token_file, token_command or token_key_file")
        }
        try r.requireAll(missing)
        return s
    }

    /// `setup:` as a list of single lines (or one line): each is written into the job script
    /// as it is, so a line may not hold a newline or another control character (one item, one
    /// line the user can read in the config).
    static func setupLines(_ v: SpecNode, _ r: SettingsReader) throws(ConfigError) -> [String] {
        let key = "backends.\(r.name).setup"
        var items: [SpecNode] = []
        switch v {
        case .sequence(let list, _): items = list
        case .scalar: items = [v]
        case .mapping: throw ConfigError(at: v.origin, key: key, "must be a list of shell lines, such as [\"module load python/3.11\"]")
        }
        var lines: [String] = []
        for item in items {
            guard case .scalar(let line, _, _) = item else {
                throw ConfigError(at: item.origin, key: key, "items must be single shell lines, such as \"module load python/3.11\"")
            }
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty else { throw ConfigError(at: item.origin, key: key, "has an empty line; remove it") }
            guard !line.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
                throw ConfigError(at: item.origin, key: key, "line '\(Terminal.clean(line, keepNewlines: false))' holds a newline or control character; write one line per item")
            }
            guard line.utf8.count <= 1000 else { throw ConfigError(at: item.origin, key: key, "has a line over 1,000 bytes; put long setup in a script on the cluster") }
            lines.append(trimmed)
        }
        return lines
    }

    public static func make(_ s: BackendSettings, _ c: BackendContext) throws -> Backend {
        guard let options = s.options as? SlurmRestSettings else { throw ConfigError(at: s.origin, key: "backends.\(s.name)", "is not a slurm-rest backend") }
        return try SlurmRestBackend(name: s.name, settings: options, store: c.store, environment: c.environment)
    }
}
