import Foundation
import ReproSupport
import ReproStore

/// What the rest of repro may know about a backend type without making one.
public struct BackendTraits: Sendable, Equatable {
    /// Tasks run as child processes of repro itself: they die with it, and nothing else can
    /// ingest them.
    public var runsInProcess: Bool
    /// The machines that run tasks read the submitter's files. The others get code, inputs and
    /// outputs through object storage, which is what `per_gb_staged` prices.
    public var sharesFileSystem: Bool

    /// Runs recorded on it outlive the process that submitted them (`repro status`, recovery).
    public var outlivesSubmitter: Bool { !runsInProcess }
}

/// The typed settings of one `backends.NAME` entry (the keys of its type only).
public protocol BackendOptions: Sendable {
    /// How often a task the machine lost is submitted again.
    var maxRetries: Int { get }
    /// The S3-compatible endpoint its object storage is reached at, if it names one.
    var objectStoreEndpoint: String? { get }
}

extension BackendOptions {
    public var objectStoreEndpoint: String? { nil }
}

/// Everything about one backend type: its name in `type:`, its traits, how its settings are
/// read, and how one is made. One conforming type per backend, in its own file; the registry
/// (`Backends.kinds`) lists each once.
public protocol BackendKind: SendableMetatype {
    static var typeName: String { get }
    static var traits: BackendTraits { get }
    /// Reads `backends.NAME` (whose `type:` is this one) into typed settings.
    static func options(_ r: SettingsReader) throws(ConfigError) -> any BackendOptions
    /// The settings a backend of this type has when it is used by its built-in name with no
    /// `backends:` entry (nil: it cannot be used that way).
    static func builtInOptions(_ defaults: BackendDefaults) -> (any BackendOptions)?
    static func make(_ settings: BackendSettings, _ context: BackendContext) throws -> Backend
}

extension BackendKind {
    public static func builtInOptions(_ defaults: BackendDefaults) -> (any BackendOptions)? { nil }
}

/// The config's sections that set a built-in backend's defaults (`slurm:`), handed to
/// `BackendKind.builtInOptions`.
public struct BackendDefaults: Sendable {
    public var slurm: SlurmSettings
    public init(slurm: SlurmSettings = SlurmSettings()) { self.slurm = slurm }
}

/// What making a backend needs besides its settings.
public struct BackendContext {
    public var store: Store
    public var repoRoot: String
    public var jobs: Int?
    public var environment: [String: String]
    package init(store: Store, repoRoot: String, jobs: Int?, environment: [String: String]) {
        self.store = store
        self.repoRoot = repoRoot
        self.jobs = jobs
        self.environment = environment
    }
}

/// Reads the keys of one `backends.NAME` mapping, with errors that name the key and its line.
public struct SettingsReader {
    public let name: String
    public let type: String
    let node: SpecNode
    let pairs: [(key: String, value: SpecNode)]

    init(name: String, type: String, node: SpecNode, pairs: [(key: String, value: SpecNode)]) {
        self.name = name
        self.type = type
        self.node = node
        self.pairs = pairs
    }

    /// Every key but `type`, in order.
    var entries: [(key: String, value: SpecNode)] { pairs.filter { $0.key != "type" } }
    var origin: String { "\(node.origin)" }

    func unknown(_ k: String, _ v: SpecNode, known: [String]) -> ConfigError {
        ConfigError(at: v.origin, "unknown key 'backends.\(name).\(k)'; known for \(type): \(known.joined(separator: ", "))")
    }

    func text(_ v: SpecNode, _ k: String) throws(ConfigError) -> String {
        guard case .scalar(let t, _, _) = v, !t.isEmpty else {
            throw ConfigError(at: v.origin, key: "backends.\(name).\(k)", "must be a single, non-empty value")
        }
        return t
    }

    func count(_ v: SpecNode, _ k: String) throws(ConfigError) -> Int {
        guard let i = Int(try text(v, k)), i >= 0 else { throw ConfigError(at: v.origin, key: "backends.\(name).\(k)", "must be a whole number >= 0") }
        return i
    }

    func duration(_ v: SpecNode, _ k: String) throws(ConfigError) -> Double {
        guard let d = DurationText.seconds(try text(v, k)) else {
            throw ConfigError(at: v.origin, key: "backends.\(name).\(k)", "must be a duration such as 2s, 5m or 1d")
        }
        return d
    }

    func url(_ v: SpecNode, _ k: String) throws(ConfigError) -> String {
        let u = try text(v, k)
        guard u.hasPrefix("http://") || u.hasPrefix("https://") else {
            throw ConfigError(at: v.origin, key: "backends.\(name).\(k)", "'\(u)' must start with http:// or https://")
        }
        return u.hasSuffix("/") ? String(u.dropLast()) : u
    }

    /// The error for required keys left out.
    func requireAll(_ missing: [String]) throws(ConfigError) {
        guard missing.isEmpty else {
            throw ConfigError(at: node.origin, key: "backends.\(name)", "(type \(type)) needs \(missing.joined(separator: ", "))")
        }
    }
}
