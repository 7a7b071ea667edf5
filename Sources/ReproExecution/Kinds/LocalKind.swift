import Foundation
import ReproSupport

/// `type: local` (and the built-in `local`): child processes of repro on this machine.
public struct LocalSettings: BackendOptions {
    public var maxRetries: Int { 0 }
}

extension LocalBackend: BackendKind {
    public static let typeName = "local"
    public static let traits = BackendTraits(runsInProcess: true, sharesFileSystem: true)

    public static func options(_ r: SettingsReader) throws(ConfigError) -> any BackendOptions {
        if let (k, v) = r.entries.first { throw ConfigError(at: v.origin, "backends.\(r.name).\(k): a local backend takes no settings") }
        return LocalSettings()
    }

    public static func builtInOptions(_ defaults: BackendDefaults) -> (any BackendOptions)? { LocalSettings() }

    public static func make(_ s: BackendSettings, _ c: BackendContext) throws -> Backend {
        LocalBackend(name: s.name, store: c.store, jobs: c.jobs ?? ProcessInfo.processInfo.activeProcessorCount, environment: c.environment)
    }
}
