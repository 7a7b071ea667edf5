import Foundation

/// Settings from `.repro/config.yaml` (all optional):
///
/// ```yaml
/// cache:
///   max_age: 30d     # entries older than this are not served and count as expired
/// slurm:
///   workdir: /shared/scratch/me/repro   # task directories; must be visible to the nodes
///   repro_path: /shared/bin/repro       # the repro the nodes run (default: this one)
///   sbatch_options: ["--constraint=avx2"]
///   max_array_size: 1000                # default: the cluster's MaxArraySize - 1
///   max_parallel: 0                     # array throttle (%N); 0 = no limit
///   poll_interval: 2s
///   max_retries: 2                      # resubmissions after NODE_FAIL or PREEMPTED
/// ```
public struct StoreConfig: Sendable {
    /// Seconds; the seed ADR's 30-day validity by default.
    public var maxAge: Double = 30 * 86400

    public struct Slurm: Sendable {
        public var workdir: String?
        public var reproPath: String?
        public var sbatchOptions: [String] = []
        public var maxArraySize: Int?
        public var maxParallel = 0
        public var pollInterval: Double = 1
        public var maxRetries = 2
    }
    public var slurm = Slurm()

    public init() {}

    public static func load(storeRoot: String) throws(ConfigError) -> StoreConfig {
        let path = storeRoot + "/config.yaml"
        guard let data = FileManager.default.contents(atPath: path) else { return StoreConfig() }
        let text = String(decoding: data, as: UTF8.self)
        let root = try SpecNode.parse(text, file: path)
        var config = StoreConfig()
        guard case .mapping(let pairs, _) = root else {
            throw ConfigError("\(root.origin): the store config must be a mapping with a `cache:` section")
        }
        for (key, value) in pairs {
            switch key {
            case "cache":
                guard case .mapping(let cachePairs, _) = value else {
                    throw ConfigError("\(value.origin): cache must be a mapping such as {max_age: 30d}")
                }
                for (k, v) in cachePairs {
                    guard k == "max_age" else {
                        throw ConfigError("\(v.origin): unknown key 'cache.\(k)'; known: cache.max_age")
                    }
                    guard case .scalar(let text, _, _) = v, let seconds = DurationText.seconds(text) else {
                        throw ConfigError("\(v.origin): cache.max_age must be a duration such as 30d, 12h or 90m")
                    }
                    config.maxAge = seconds
                }
            case "slurm":
                config.slurm = try parseSlurm(value)
            default:
                throw ConfigError("\(value.origin): unknown key '\(key)' in the store config; known: cache, slurm")
            }
        }
        return config
    }

    static func parseSlurm(_ node: SpecNode) throws(ConfigError) -> Slurm {
        guard case .mapping(let pairs, _) = node else {
            throw ConfigError("\(node.origin): slurm must be a mapping such as {workdir: /shared/repro}")
        }
        var s = Slurm()
        func text(_ v: SpecNode, _ k: String) throws(ConfigError) -> String {
            guard case .scalar(let t, _, _) = v else { throw ConfigError("\(v.origin): slurm.\(k) must be a single value") }
            return t
        }
        func int(_ v: SpecNode, _ k: String) throws(ConfigError) -> Int {
            guard let i = Int(try text(v, k)), i >= 0 else { throw ConfigError("\(v.origin): slurm.\(k) must be a whole number >= 0") }
            return i
        }
        for (k, v) in pairs {
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
                default: throw ConfigError("\(v.origin): slurm.sbatch_options must be a list of sbatch options")
                }
            case "max_array_size": s.maxArraySize = try int(v, k)
            case "max_parallel": s.maxParallel = try int(v, k)
            case "max_retries": s.maxRetries = try int(v, k)
            case "poll_interval":
                guard let d = DurationText.seconds(try text(v, k)) else {
                    throw ConfigError("\(v.origin): slurm.poll_interval must be a duration such as 2s")
                }
                s.pollInterval = d
            default:
                throw ConfigError(
                    "\(v.origin): unknown key 'slurm.\(k)'; known: workdir, repro_path, sbatch_options, max_array_size, max_parallel, poll_interval, max_retries")
            }
        }
        return s
    }
}
