import Foundation
import ReproSupport

/// `type: slurm` (and the built-in `slurm`): sbatch on a cluster that shares this disk.
extension StoreConfig.Slurm: BackendOptions {}

extension SlurmBackend: BackendKind {
    public static let typeName = "slurm"
    public static let traits = BackendTraits(runsInProcess: false, sharesFileSystem: true)

    public static func options(_ r: SettingsReader) throws(ConfigError) -> any BackendOptions {
        try StoreConfig.parseSlurm(r.node, path: "backends.\(r.name)", skipping: ["type"])
    }

    /// The top-level `slurm:` section.
    public static func builtInOptions(_ config: StoreConfig) -> (any BackendOptions)? { config.slurm }

    public static func make(_ s: BackendSettings, _ c: BackendContext) throws -> Backend {
        guard let options = s.options as? StoreConfig.Slurm else { throw ConfigError(at: s.origin, key: "backends.\(s.name)", "is not a slurm backend") }
        return try SlurmBackend(name: s.name, settings: options, store: c.store, repoRoot: c.repoRoot, environment: c.environment)
    }
}
