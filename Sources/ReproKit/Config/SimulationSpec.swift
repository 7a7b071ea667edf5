import Foundation
import ReproSupport
import ReproStore

/// A simulation spec: what to run, what code and inputs it depends on, and at which precision.
/// Loaded from YAML or JSON by `SpecLoader`; every field is validated there.
public struct SimulationSpec: Sendable {
    public enum Seed: Sendable, Equatable {
        case fixed(Int64)
        case auto
    }

    public var name: String
    /// The argv template; `{params.x}`, `{seed}`, ... are filled in per run.
    public var command: [String]
    /// Repo-relative paths whose committed content is the code identity, normalized and sorted.
    public var code: [String]
    public var inputs: [String]
    /// Output patterns under `$REPRO_OUTDIR`; nil means everything the simulation writes.
    public var outputs: [String]?
    public var params: [String: JSONValue]
    public var seed: Seed
    public var solver: [String: JSONValue]
    public var env: [String: String]
    public var envPassthrough: [String]
    public var backend: String
    /// Seconds; nil means no limit.
    public var timeout: Double?
    public var resources: [String: JSONValue]
    /// The spec file, as given.
    public var sourcePath: String
    /// How close outputs must be for `repro verify` to call them EQUIVALENT (not in the key).
    public var verify: Tolerance = .exact
    /// What `repro report` tabulates and plots (`report: {y: ...}`; not in the key).
    public var reportY: [String] = []
    /// How long a run takes, for `backend: auto` (not in the key).
    public var estimate: EstimateSpec? = nil

    public var rtol: Double? { solver["rtol"]?.numberValue }
    public var atol: Double? { solver["atol"]?.numberValue }

    /// The part of the spec that decides the result, as canonical JSON. Name, backend,
    /// resources and timeout are recorded with a run but do not change what it computes.
    public var semanticConfig: JSONValue {
        var seedValue: JSONValue
        switch seed {
        case .fixed(let s): seedValue = .int(s)
        case .auto: seedValue = "auto"
        }
        return .object([
            "command": .array(command.map { .string($0) }),
            "code": .array(code.map { .string($0) }),
            "inputs": .array(inputs.map { .string($0) }),
            "outputs": outputs.map { .array($0.map { .string($0) }) } ?? .null,
            "params": .object(params),
            "seed": seedValue,
            "solver": .object(solver),
            "env": .object(env.mapValues { .string($0) }),
            "env_passthrough": .array(envPassthrough.map { .string($0) }),
        ])
    }

    /// SHA-256 of the canonical semantic config.
    public var configHash: String { Hashing.sha256Hex(semanticConfigCanonical) }

    /// `semanticConfig.canonicalBytes`, written directly (keys in canonical order).
    var semanticConfigCanonical: [UInt8] {
        var w = CanonicalWriter()
        w.key("code")
        w.strings(code)
        w.key("command")
        w.strings(command)
        w.key("env")
        w.stringObject(env)
        w.key("env_passthrough")
        w.strings(envPassthrough)
        w.key("inputs")
        w.strings(inputs)
        w.key("outputs")
        if let outputs { w.strings(outputs) } else { w.null() }
        w.key("params")
        w.object(params)
        w.key("seed")
        switch seed {
        case .fixed(let s): w.int(s)
        case .auto: w.string("auto")
        }
        w.key("solver")
        w.object(solver)
        return w.finish()
    }

    /// The seed the simulation gets: the declared one, or one derived from the config hash.
    public var resolvedSeed: Int64 {
        switch seed {
        case .fixed(let s): return s
        case .auto: return Hashing.seed(fromHex: configHash)
        }
    }
}

/// A spec's `estimate:`: a parametric formula and/or the param that history scales by. A class:
/// every point of a sweep shares its spec's one instance (a pointer, not a copy per point).
public final class EstimateSpec: Sendable {
    public let seconds: EstimateExpression?
    /// Path under params (`population_size` for `params.population_size`).
    public let scale: [String]?
    public let origin: String

    public init(seconds: EstimateExpression? = nil, scale: [String]? = nil, origin: String) {
        self.seconds = seconds
        self.scale = scale
        self.origin = origin
    }

    /// A positive number at `path` in params, or nil.
    static func value(_ path: [String], in params: [String: JSONValue]) -> Double? {
        var v: JSONValue = .object(params)
        for k in path {
            guard let next = v[k] else { return nil }
            v = next
        }
        return v.numberValue
    }
}

extension SimulationSpec {
    /// The spec a run record was made from (its semantic config, name, resources and timeout),
    /// so a run can be re-executed exactly, whatever the spec file says now or whether it was a
    /// sweep point or had `--set`. `verify` tolerances are not part of a record: `tolerance`.
    public init(record r: RunRecord, tolerance: Tolerance) throws(ConfigError) {
        let c = r.config
        func strings(_ key: String) -> [String]? { c[key]?.arrayValue?.compactMap(\.stringValue) }
        guard let command = strings("command"), !command.isEmpty, let code = strings("code") else {
            throw ConfigError("run \(r.runId)'s record has no command or code in its config; it cannot be re-executed")
        }
        self.init(
            name: r.name, command: command, code: code, inputs: strings("inputs") ?? [], outputs: strings("outputs"),
            params: c["params"]?.objectValue ?? [:], seed: c["seed"]?.stringValue == "auto" ? .auto : .fixed(r.seed), solver: c["solver"]?.objectValue ?? [:],
            env: (c["env"]?.objectValue ?? [:]).compactMapValues(\.stringValue), envPassthrough: strings("env_passthrough") ?? [],
            backend: r.backend, timeout: r.timeoutS, resources: r.resources.objectValue ?? [:], sourcePath: r.specPath,
            verify: tolerance)
    }
}
