import Foundation

/// One named backend from `backends:` in `.repro.yaml` / `.repro/config.yaml`.
public struct BackendSettings: Sendable {
    public var name: String
    public var type: String
    /// Where it was configured (file:line), for messages.
    public var origin: String
    /// Set when the committed .repro.yaml names where its token goes and the user has not
    /// accepted that yet (`ProjectSecrets`): the backend is refused with this message.
    public var unaccepted: String?
    /// `type: slurm`: the same keys as the top-level `slurm:` section.
    public var slurm = StoreConfig.Slurm()

    // `type: slurm-rest`
    /// slurmrestd's base URL.
    public var url: String = ""
    /// The user jobs run as (X-SLURM-USER-NAME).
    public var user: String = ""
    /// Where the JWT comes from, read at each request: an environment variable or a file.
    public var tokenEnv: String?
    public var tokenFile: String?
    /// Where tasks are staged (a machine that shares no disk reaches them there).
    public var staging: S3Location?
    /// An S3-compatible endpoint instead of AWS (else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL).
    public var endpoint: String?
    public var region: String?
    /// The repro the nodes run.
    public var reproPath: String = "repro"
    /// The REST API version (`v0.0.38`, `v0.0.40`, ...); discovered from the server when unset.
    public var apiVersion: String?
    public var partition: String?
    /// The folder on the node under which a task gets its private scratch folder.
    public var scratch: String = "/tmp"
    public var pollInterval: Double = 2
    public var maxParallel = 0
    public var maxRetries = 2
    /// How long after the scheduler says a job ended its manifest may take to appear.
    public var manifestGrace: Double = 60
    /// How long workers' presigned URLs stay valid beyond the task's time limit.
    public var urlMargin: Double = 86400

    // `type: aws-batch`
    public var jobQueue: String = ""
    /// Its container image must contain repro (docs/backends.md says how to build one).
    public var jobDefinition: String = ""
    /// The Batch API endpoint instead of AWS's (else AWS_ENDPOINT_URL_BATCH).
    public var batchEndpoint: String?

    // `type: azure-batch`
    /// https://ACCOUNT.REGION.batch.azure.com
    public var accountURL: String = ""
    public var poolId: String = ""
    public var storageAccount: String = ""
    public var container: String = ""
    /// The staging prefix inside the container.
    public var prefix: String = "repro-staging"
    /// The Blob endpoint instead of https://ACCOUNT.blob.core.windows.net.
    public var blobEndpoint: String?

    static let secretKeys: Set<String> = [
        "token", "password", "secret", "access_key", "secret_key", "access_key_id", "secret_access_key", "aws_access_key_id",
        "aws_secret_access_key", "session_token", "jwt",
    ]

    static func parse(name: String, _ node: SpecNode) throws(ConfigError) -> BackendSettings {
        guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }), !name.isEmpty else {
            throw ConfigError("\(node.origin): backend name '\(name)' may hold only letters, digits, '-' and '_'")
        }
        guard name != "auto" else {
            throw ConfigError("\(node.origin): 'auto' is reserved (backend: auto routes each run by its estimate); choose another name")
        }
        guard case .mapping(let pairs, _) = node else {
            throw ConfigError("\(node.origin): backends.\(name) must be a mapping such as {type: slurm-rest, url: ..., staging: s3://...}")
        }
        var s = BackendSettings(name: name, type: "", origin: "\(node.origin)")
        func text(_ v: SpecNode, _ k: String) throws(ConfigError) -> String {
            guard case .scalar(let t, _, _) = v, !t.isEmpty else {
                throw ConfigError("\(v.origin): backends.\(name).\(k) must be a single, non-empty value")
            }
            return t
        }
        func count(_ v: SpecNode, _ k: String) throws(ConfigError) -> Int {
            guard let i = Int(try text(v, k)), i >= 0 else { throw ConfigError("\(v.origin): backends.\(name).\(k) must be a whole number >= 0") }
            return i
        }
        func duration(_ v: SpecNode, _ k: String) throws(ConfigError) -> Double {
            guard let d = DurationText.seconds(try text(v, k)) else {
                throw ConfigError("\(v.origin): backends.\(name).\(k) must be a duration such as 2s, 5m or 1d")
            }
            return d
        }
        guard let typeNode = pairs.first(where: { $0.key == "type" })?.value else {
            throw ConfigError("\(node.origin): backends.\(name) needs a type: one of \(Backends.types.joined(separator: ", "))")
        }
        s.type = try text(typeNode, "type")
        guard Backends.types.contains(s.type) else {
            throw ConfigError("\(typeNode.origin): backends.\(name).type '\(s.type)' is unknown; use one of \(Backends.types.joined(separator: ", "))")
        }
        for (k, v) in pairs where secretKeys.contains(k.lowercased()) {
            throw ConfigError(
                "\(v.origin): backends.\(name).\(k): secrets do not belong in a config file (it is committed or copied); "
                    + "use token_env / token_file for a scheduler token, and the AWS environment or ~/.aws/credentials for storage")
        }
        switch s.type {
        case "slurm":
            s.slurm = try StoreConfig.parseSlurm(node, path: "backends.\(name)", skipping: ["type"])
            s.maxRetries = s.slurm.maxRetries
        case "local":
            for (k, v) in pairs where k != "type" {
                throw ConfigError("\(v.origin): backends.\(name).\(k): a local backend takes no settings")
            }
        default:
            // Backends staged through object storage: slurm-rest and aws-batch.
            // Azure stages in its own Blob Storage (storage_account, container), not S3.
            let common = (s.type == "azure-batch" ? [] : ["staging", "endpoint", "region"])
                + ["repro_path", "scratch", "poll_interval", "manifest_grace", "url_margin", "max_retries"]
            let specific: [String]
            switch s.type {
            case "aws-batch": specific = ["job_queue", "job_definition", "batch_endpoint"]
            case "azure-batch": specific = ["account_url", "pool_id", "storage_account", "container", "prefix", "blob_endpoint"]
            default: specific = ["url", "user", "token_env", "token_file", "api_version", "partition", "max_parallel"]
            }
            if s.type == "aws-batch" || s.type == "azure-batch" {
                s.reproPath = "repro"  // on the image's PATH
                s.scratch = "/tmp"
            }
            func url(_ v: SpecNode, _ k: String) throws(ConfigError) -> String {
                let u = try text(v, k)
                guard u.hasPrefix("http://") || u.hasPrefix("https://") else {
                    throw ConfigError("\(v.origin): backends.\(name).\(k) '\(u)' must start with http:// or https://")
                }
                return u.hasSuffix("/") ? String(u.dropLast()) : u
            }
            for (k, v) in pairs where k != "type" {
                guard specific.contains(k) || common.contains(k) else {
                    throw ConfigError(
                        "\(v.origin): unknown key 'backends.\(name).\(k)'; known for \(s.type): \((specific + common).joined(separator: ", "))")
                }
                switch k {
                case "url": s.url = try url(v, k)
                case "user": s.user = try text(v, k)
                case "token_env": s.tokenEnv = try text(v, k)
                case "token_file": s.tokenFile = try text(v, k)
                case "job_queue": s.jobQueue = try text(v, k)
                case "job_definition": s.jobDefinition = try text(v, k)
                case "batch_endpoint": s.batchEndpoint = try url(v, k)
                case "account_url": s.accountURL = try url(v, k)
                case "pool_id": s.poolId = try text(v, k)
                case "storage_account": s.storageAccount = try text(v, k)
                case "container": s.container = try text(v, k)
                case "prefix": s.prefix = try text(v, k).split(separator: "/").joined(separator: "/")
                case "blob_endpoint": s.blobEndpoint = try url(v, k)
                case "staging": s.staging = try S3Location(parsing: try text(v, k), what: "\(v.origin): backends.\(name).staging")
                case "endpoint": s.endpoint = try text(v, k)
                case "region": s.region = try text(v, k)
                case "repro_path": s.reproPath = try text(v, k)
                case "api_version":
                    let a = try text(v, k)
                    guard SlurmREST.supported.contains(a) else {
                        throw ConfigError("\(v.origin): backends.\(name).api_version '\(a)'; supported: \(SlurmREST.supported.joined(separator: ", "))")
                    }
                    s.apiVersion = a
                case "partition": s.partition = try SlurmBackend.resourceValue("partition", .string(try text(v, k)))
                case "scratch": s.scratch = try text(v, k)
                case "poll_interval": s.pollInterval = try duration(v, k)
                case "manifest_grace": s.manifestGrace = try duration(v, k)
                case "url_margin": s.urlMargin = try duration(v, k)
                case "max_parallel": s.maxParallel = try count(v, k)
                case "max_retries": s.maxRetries = try count(v, k)
                default: break  // unreachable: every known key is handled above
                }
            }
            var missing: [String] = []
            if s.type == "azure-batch" {
                for (k, v) in [("account_url", s.accountURL), ("pool_id", s.poolId), ("storage_account", s.storageAccount), ("container", s.container)]
                where v.isEmpty { missing.append(k) }
                if !s.container.isEmpty {
                    // The staging location: the container and prefix, as `az://` for messages.
                    var loc = S3Location(bucket: s.container, prefix: s.prefix)
                    loc.scheme = "az"
                    s.staging = loc
                }
            } else if s.type == "aws-batch" {
                if s.jobQueue.isEmpty { missing.append("job_queue") }
                if s.jobDefinition.isEmpty { missing.append("job_definition") }
                if s.staging == nil { missing.append("staging") }
            } else {
                if s.url.isEmpty { missing.append("url") }
                if s.user.isEmpty { missing.append("user") }
                if s.staging == nil { missing.append("staging") }
                if s.tokenEnv == nil && s.tokenFile == nil { missing.append("token_env or token_file") }
            }
            guard missing.isEmpty else {
                throw ConfigError("\(node.origin): backends.\(name) (type \(s.type)) needs \(missing.joined(separator: ", "))")
            }
        }
        return s
    }
}
