import Foundation
import ReproSupport
import ReproRemote

/// `type: azure-batch`: Azure Batch, tasks staged in Azure Blob Storage.
public struct AzureBatchSettings: StagedOptions {
    public var origin: String
    /// https://ACCOUNT.REGION.batch.azure.com
    public var accountURL = ""
    public var poolId = ""
    public var storageAccount = ""
    public var container = ""
    /// The staging prefix inside the container.
    public var prefix = "repro-staging"
    /// The Blob endpoint instead of https://ACCOUNT.blob.core.windows.net.
    public var blobEndpoint: String?
    /// `staging` is the container and prefix (as `az://` in messages); no S3 keys.
    public var staged = StagedSettings()
}

extension AzureBatchBackend: BackendKind {
    public static let typeName = "azure-batch"
    public static let traits = BackendTraits(runsInProcess: false, sharesFileSystem: false)

    public static func options(_ r: SettingsReader) throws(ConfigError) -> any BackendOptions {
        var s = AzureBatchSettings(origin: r.origin)
        let specific = ["account_url", "pool_id", "storage_account", "container", "prefix", "blob_endpoint"]
        try r.readStaged(&s.staged, common: StagedSettings.workerKeys, specific: specific) { (k, v) throws(ConfigError) in
            switch k {
            case "account_url": s.accountURL = try r.url(v, k)
            case "pool_id": s.poolId = try r.text(v, k)
            case "storage_account": s.storageAccount = try r.text(v, k)
            case "container": s.container = try r.text(v, k)
            case "prefix": s.prefix = try r.text(v, k).split(separator: "/").joined(separator: "/")
            default: s.blobEndpoint = try r.url(v, k)
            }
        }
        let required = [("account_url", s.accountURL), ("pool_id", s.poolId), ("storage_account", s.storageAccount), ("container", s.container)]
        try r.requireAll(required.filter { $0.1.isEmpty }.map(\.0))
        var loc = S3Location(bucket: s.container, prefix: s.prefix)
        loc.scheme = "az"
        s.staged.staging = loc
        return s
    }

    public static func make(_ s: BackendSettings, _ c: BackendContext) throws -> Backend {
        guard let options = s.options as? AzureBatchSettings else { throw ConfigError(at: s.origin, key: "backends.\(s.name)", "is not an azure-batch backend") }
        return try AzureBatchBackend(name: s.name, settings: options, store: c.store, environment: c.environment)
    }
}
