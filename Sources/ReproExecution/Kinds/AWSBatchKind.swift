import Foundation
import ReproSupport

/// `type: aws-batch`: AWS Batch, tasks staged in S3.
public struct AWSBatchSettings: StagedOptions {
    public var origin: String
    public var jobQueue = ""
    /// Its container image must contain repro (docs/backends.md says how to build one).
    public var jobDefinition = ""
    /// The Batch API endpoint instead of AWS's (else AWS_ENDPOINT_URL_BATCH).
    public var batchEndpoint: String?
    public var staged = StagedSettings()
}

extension AWSBatchBackend: BackendKind {
    public static let typeName = "aws-batch"
    public static let traits = BackendTraits(runsInProcess: false, sharesFileSystem: false)

    public static func options(_ r: SettingsReader) throws(ConfigError) -> any BackendOptions {
        var s = AWSBatchSettings(origin: r.origin)
        try r.readStaged(
            &s.staged, common: StagedSettings.storageKeys + StagedSettings.workerKeys, specific: ["job_queue", "job_definition", "batch_endpoint"]
        ) { (k, v) throws(ConfigError) in
            switch k {
            case "job_queue": s.jobQueue = try r.text(v, k)
            case "job_definition": s.jobDefinition = try r.text(v, k)
            default: s.batchEndpoint = try r.url(v, k)
            }
        }
        var missing: [String] = []
        if s.jobQueue.isEmpty { missing.append("job_queue") }
        if s.jobDefinition.isEmpty { missing.append("job_definition") }
        if s.staged.staging == nil { missing.append("staging") }
        try r.requireAll(missing)
        return s
    }

    public static func make(_ s: BackendSettings, _ c: BackendContext) throws -> Backend {
        guard let options = s.options as? AWSBatchSettings else { throw ConfigError(at: s.origin, key: "backends.\(s.name)", "is not an aws-batch backend") }
        return try AWSBatchBackend(name: s.name, settings: options, store: c.store, environment: c.environment)
    }
}
