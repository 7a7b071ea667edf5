import Foundation
import ReproSupport

/// `type: slurm-rest`: SLURM over slurmrestd, tasks staged in S3.
public struct SlurmRestSettings: StagedOptions {
    public var origin: String
    /// slurmrestd's base URL.
    public var url = ""
    /// The user jobs run as (X-SLURM-USER-NAME).
    public var user = ""
    /// Where the JWT comes from, read at each request: an environment variable or a file.
    public var tokenEnv: String?
    public var tokenFile: String?
    /// The REST API version (`v0.0.38`, `v0.0.40`, ...); discovered from the server when unset.
    public var apiVersion: String?
    public var partition: String?
    public var maxParallel = 0
    public var staged = StagedSettings()
}

extension SlurmRestBackend: BackendKind {
    public static let typeName = "slurm-rest"
    public static let traits = BackendTraits(runsInProcess: false, sharesFileSystem: false)

    public static func options(_ r: SettingsReader) throws(ConfigError) -> any BackendOptions {
        var s = SlurmRestSettings(origin: r.origin)
        let specific = ["url", "user", "token_env", "token_file", "api_version", "partition", "max_parallel"]
        try r.readStaged(&s.staged, common: StagedSettings.storageKeys + StagedSettings.workerKeys, specific: specific) {
            (k, v) throws(ConfigError) in
            switch k {
            case "url": s.url = try r.url(v, k)
            case "user": s.user = try r.text(v, k)
            case "token_env": s.tokenEnv = try r.text(v, k)
            case "token_file": s.tokenFile = try r.text(v, k)
            case "api_version":
                let a = try r.text(v, k)
                guard SlurmREST.supported.contains(a) else {
                    throw ConfigError(at: v.origin, key: "backends.\(r.name).api_version", "'\(a)'; supported: \(SlurmREST.supported.joined(separator: ", "))")
                }
                s.apiVersion = a
            case "partition": s.partition = try SlurmBackend.resourceValue("partition", .string(try r.text(v, k)))
            default: s.maxParallel = try r.count(v, k)
            }
        }
        var missing: [String] = []
        if s.url.isEmpty { missing.append("url") }
        if s.user.isEmpty { missing.append("user") }
        if s.staged.staging == nil { missing.append("staging") }
        if s.tokenEnv == nil && s.tokenFile == nil { missing.append("token_env or token_file") }
        try r.requireAll(missing)
        return s
    }

    public static func make(_ s: BackendSettings, _ c: BackendContext) throws -> Backend {
        guard let options = s.options as? SlurmRestSettings else { throw ConfigError(at: s.origin, key: "backends.\(s.name)", "is not a slurm-rest backend") }
        return try SlurmRestBackend(name: s.name, settings: options, store: c.store, environment: c.environment)
    }
}
