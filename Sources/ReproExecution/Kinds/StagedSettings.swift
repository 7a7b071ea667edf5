import Foundation
import ReproSupport
import ReproRemote

/// The settings every backend that shares no disk with the submitter takes: where tasks are
/// staged and what the worker on the node does.
public struct StagedSettings: Sendable {
    /// Where tasks are staged (a machine that shares no disk reaches them there).
    public var staging: S3Location?
    /// For `az://` staging: the storage account and its Blob endpoint (else
    /// https://ACCOUNT.blob.core.windows.net).
    public var storageAccount: String?
    public var blobEndpoint: String?
    /// An S3-compatible endpoint instead of AWS (else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL).
    public var endpoint: String?
    public var region: String?
    /// The repro the nodes run.
    public var reproPath = "repro"
    /// The folder on the node under which a task gets its private scratch folder.
    public var scratch = "/tmp"
    public var pollInterval: Double = 2
    public var maxRetries = 2
    /// How long after the scheduler says a job ended its manifest may take to appear.
    public var manifestGrace: Double = 60
    /// How long workers' presigned URLs stay valid beyond the task's time limit.
    public var urlMargin: Double = 86400
    /// How workers reach the staged objects: presigned URLs (they need no credentials), or
    /// their job's own IAM role (`job-role`: plain S3 requests signed with the credentials the
    /// node gives, for tasks that outlive a role session or outputs over 5 GB).
    public enum StagingAuth: String, Sendable { case presigned, jobRole = "job-role" }
    public var stagingAuth = StagingAuth.presigned
    /// With `job-role`: the part size of multipart uploads of outputs (min 5 MiB).
    public var partSize: Int64?
    /// How often a worker writes its heartbeat object while its task runs.
    public var heartbeatInterval: Double = 30
    /// How long a task its scheduler calls running may go without a new heartbeat before it
    /// counts as lost (cancelled and submitted again, within `max_retries`).
    public var heartbeatLimit: Double = 300

    /// Keys of the S3 staging area (Azure stages in its own Blob Storage instead).
    static let storageKeys = ["staging", "endpoint", "region"]
    /// Keys of the worker.
    static let workerKeys = [
        "repro_path", "scratch", "poll_interval", "manifest_grace", "url_margin", "max_retries", "heartbeat_interval", "heartbeat_limit",
        "staging_auth", "part_size",
    ]

    /// Keys of Blob staging, for backends that take `az://` staging.
    static let blobKeys = ["storage_account", "blob_endpoint"]

    /// Reads `k` when it is one of these settings; false when it is not. `allowBlob`: staging
    /// may be an `az://` container.
    mutating func read(_ k: String, _ v: SpecNode, _ r: SettingsReader, allowBlob: Bool = false) throws(ConfigError) -> Bool {
        switch k {
        case "staging": staging = try S3Location(parsing: try r.text(v, k), what: "\(v.origin): backends.\(r.name).staging", allowBlob: allowBlob)
        case "storage_account": storageAccount = try r.text(v, k)
        case "blob_endpoint": blobEndpoint = try r.url(v, k)
        case "endpoint": endpoint = try r.text(v, k)
        case "region": region = try r.text(v, k)
        case "repro_path": reproPath = try r.text(v, k)
        case "scratch": scratch = try r.text(v, k)
        case "poll_interval": pollInterval = try r.duration(v, k)
        case "manifest_grace": manifestGrace = try r.duration(v, k)
        case "url_margin": urlMargin = try r.duration(v, k)
        case "max_retries": maxRetries = try r.count(v, k)
        case "heartbeat_interval": heartbeatInterval = try r.duration(v, k)
        case "heartbeat_limit": heartbeatLimit = try r.duration(v, k)
        case "staging_auth":
            guard let a = StagingAuth(rawValue: try r.text(v, k)) else {
                throw ConfigError(at: v.origin, key: "backends.\(r.name).staging_auth", "must be presigned or job-role")
            }
            stagingAuth = a
        case "part_size":
            guard let mb = SlurmREST.megabytes(try r.text(v, k)), mb >= 5, mb <= 5 << 10 else {
                throw ConfigError(at: v.origin, key: "backends.\(r.name).part_size", "must be a size from 5M to 5G (S3's part limits), such as 64M")
            }
            partSize = Int64(mb) << 20
        default: return false
        }
        return true
    }
}

/// Typed settings whose worker and staging settings are `staged`, readable as their own
/// (`settings.scratch`).
@dynamicMemberLookup
public protocol StagedOptions: BackendOptions {
    var origin: String { get }
    var staged: StagedSettings { get }
}

extension StagedOptions {
    public subscript<T>(dynamicMember path: KeyPath<StagedSettings, T>) -> T { staged[keyPath: path] }
    public var maxRetries: Int { staged.maxRetries }
    public var objectStoreEndpoint: String? { staged.endpoint }
}

extension SettingsReader {
    /// Reads every key into `specific` (this type's own keys) or `staged`; anything else is an
    /// unknown key naming the ones this type knows.
    func readStaged(
        _ staged: inout StagedSettings, common: [String], specific: [String],
        _ own: (String, SpecNode) throws(ConfigError) -> Void
    ) throws(ConfigError) {
        for (k, v) in entries {
            if specific.contains(k) {
                try own(k, v)
                continue
            }
            let read = common.contains(k) ? try staged.read(k, v, self, allowBlob: common.contains("storage_account")) : false
            if !read { throw unknown(k, v, known: specific + common) }
        }
    }
}
