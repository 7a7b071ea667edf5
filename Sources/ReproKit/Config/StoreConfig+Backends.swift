import Foundation
import ReproExecution
import ReproStore
import ReproSupport

/// What a backend name stands for under one project's config: the registry
/// (`ReproExecution.Backends`) knows the types, the config the names.
extension Backends {
    /// The traits of the backend a name stands for, from the config.
    public static func traits(of name: String, config: StoreConfig) -> BackendTraits {
        traits(ofType: type(of: name, config: config))
    }

    /// Whether a name is the built-in local backend or one of `type: local`.
    public static func isLocal(_ name: String, config: StoreConfig) -> Bool { traits(of: name, config: config).runsInProcess }

    /// The type behind a name, from the config (a name that is not configured is its own type).
    public static func type(of name: String, config: StoreConfig) -> String {
        config.backends[name]?.type ?? name
    }

    /// The typed settings of a named backend: its `backends:` entry, else a built-in's defaults.
    public static func settings(of name: String, config: StoreConfig) -> BackendSettings? {
        if let named = config.backends[name] { return named }
        guard let k = kind(name), let options = k.builtInOptions(BackendDefaults(slurm: config.slurm)) else { return nil }
        return BackendSettings(name: name, type: k.typeName, origin: "built in", unaccepted: nil, options: options)
    }

    /// Checks a backend name before anything is served or run.
    public static func validate(_ name: String, config: StoreConfig) throws(ConfigError) {
        // `auto` is resolved per run (see Router); what it may choose must exist.
        if name == "auto" {
            if let cloud = config.orchestration.cloud {
                do { try validate(cloud, config: config) } catch {
                    throw ConfigError(at: config.orchestration.origin, "orchestration.cloud: \(error.message)")
                }
            }
            return
        }
        guard settings(of: name, config: config) == nil else { return }
        let known = (builtIn.filter { config.backends[$0] == nil } + config.backends.keys.sorted()).joined(separator: ", ")
        throw ConfigError(
            "backend '\(name)' is not available: it is neither built in nor configured under `backends:` in .repro.yaml or "
                + ".repro/config.yaml; known here: \(known)")
    }

    public static func make(
        _ name: String, store: Store, repoRoot: String, jobs: Int?, environment: [String: String], config: StoreConfig? = nil
    ) throws -> Backend {
        let config = try config ?? StoreConfig.load(storeRoot: store.root, repoRoot: repoRoot)
        guard name != "auto" else {
            throw ConfigError("'auto' chooses a backend per run (repro run, repro sweep); here name one, such as local, slurm or a backend under backends:")
        }
        try validate(name, config: config)
        guard let s = settings(of: name, config: config), let k = kind(s.type) else {
            throw ConfigError("backend '\(name)' has type '\(type(of: name, config: config))'; this version supports: \(types.joined(separator: ", "))")
        }
        if let why = s.unaccepted { throw ConfigError("backend '\(name)': " + why) }
        return try k.make(s, BackendContext(store: store, repoRoot: repoRoot, jobs: jobs, environment: environment))
    }
}
