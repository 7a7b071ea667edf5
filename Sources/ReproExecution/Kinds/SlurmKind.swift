import Foundation
import ReproSupport

/// The settings of `type: slurm` and of the top-level `slurm:` section.
public struct SlurmSettings: Sendable, BackendOptions {
    public var workdir: String?
    public var reproPath: String?
    public var sbatchOptions: [String] = []
    public var maxArraySize: Int?
    public var maxParallel = 0
    public var pollInterval: Double = 1
    public var maxRetries = 2
    public init() {}
}

extension SlurmSettings {
    package static func parse(_ node: SpecNode, path: String, skipping: Set<String> = []) throws(ConfigError) -> SlurmSettings {
        guard case .mapping(let pairs, _) = node else {
            throw ConfigError(at: node.origin, "\(path) must be a mapping such as {workdir: /shared/repro}")
        }
        var s = SlurmSettings()
        func text(_ v: SpecNode, _ k: String) throws(ConfigError) -> String {
            guard case .scalar(let t, _, _) = v else { throw ConfigError(at: v.origin, "\(path).\(k) must be a single value") }
            return t
        }
        func int(_ v: SpecNode, _ k: String) throws(ConfigError) -> Int {
            guard let i = Int(try text(v, k)), i >= 0 else { throw ConfigError(at: v.origin, "\(path).\(k) must be a whole number >= 0") }
            return i
        }
        for (k, v) in pairs where !skipping.contains(k) {
            switch k {
            case "workdir": s.workdir = try text(v, k)
            case "repro_path": s.reproPath = try text(v, k)
            case "sbatch_options":
                switch v {
                case .sequence(let items, _):
                    var out: [String] = []
                    for item in items { out.append(try text(item, k)) }
                    s.sbatchOptions = out
                case .scalar(let t, _, _): s.sbatchOptions = (try? ShellWords.split(t)) ?? [t]
                default: throw ConfigError(at: v.origin, key: "slurm.sbatch_options", "must be a list of sbatch options")
                }
            case "max_array_size": s.maxArraySize = try int(v, k)
            case "max_parallel": s.maxParallel = try int(v, k)
            case "max_retries": s.maxRetries = try int(v, k)
            case "poll_interval":
                guard let d = DurationText.seconds(try text(v, k)) else {
                    throw ConfigError(at: v.origin, key: "slurm.poll_interval", "must be a duration such as 2s")
                }
                s.pollInterval = d
            default:
                throw ConfigError(
                    "\(v.origin): unknown key '\(path).\(k)'; known: workdir, repro_path, sbatch_options, max_array_size, max_parallel, poll_interval, max_retries")
            }
        }
        return s
    }
}

/// `type: slurm` (and the built-in `slurm`): sbatch on a cluster that shares this disk.
extension SlurmBackend: BackendKind {
    public static let typeName = "slurm"
    public static let traits = BackendTraits(runsInProcess: false, sharesFileSystem: true)

    public static func options(_ r: SettingsReader) throws(ConfigError) -> any BackendOptions {
        try SlurmSettings.parse(r.node, path: "backends.\(r.name)", skipping: ["type"])
    }

    /// The top-level `slurm:` section.
    public static func builtInOptions(_ defaults: BackendDefaults) -> (any BackendOptions)? { defaults.slurm }

    public static func make(_ s: BackendSettings, _ c: BackendContext) throws -> Backend {
        guard let options = s.options as? SlurmSettings else { throw ConfigError(at: s.origin, key: "backends.\(s.name)", "is not a slurm backend") }
        return try SlurmBackend(name: s.name, settings: options, store: c.store, repoRoot: c.repoRoot, environment: c.environment)
    }
}
