import Foundation
import ReproExecution
import ReproSupport

/// Reads a spec file, applies `--set` overrides and validates every field, so that a bad spec
/// fails before anything runs, with the file, key, line and fix in the message.
public enum SpecLoader {
    static let knownKeys: [String] = [
        "name", "command", "code", "inputs", "outputs", "params", "seed", "solver", "env",
        "env_passthrough", "backend", "timeout", "resources", "verify", "report", "estimate",
    ]
    static let resourceKeys = ["cpus", "memory", "time", "partition", "account", "qos", "gpus"]

    public static func load(path: String, overrides: [String] = []) throws(ConfigError) -> SimulationSpec {
        guard let data = FileManager.default.contents(atPath: path) else {
            let why = FileManager.default.fileExists(atPath: path) ? "cannot be read" : "does not exist"
            throw ConfigError("spec file \(path) \(why); pass the path of a YAML or JSON spec")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(at: path, "not UTF-8 text; save the spec as UTF-8")
        }
        return try parse(text: text, file: path, overrides: overrides)
    }

    public static func parse(text: String, file: String, overrides: [String] = []) throws(ConfigError) -> SimulationSpec {
        var root = try SpecNode.parse(text, file: file)
        guard case .mapping = root else {
            throw ConfigError(at: root.origin, "the spec must be a mapping of keys (name, command, ...), not a \(root.kindName)")
        }
        for option in overrides { try applyOverride(option, to: &root) }
        return try validate(root, file: file)
    }

    /// `--set a.b=value`: the value is read as a YAML scalar (or flow list/mapping).
    static func applyOverride(_ option: String, to root: inout SpecNode) throws(ConfigError) {
        guard let eq = option.firstIndex(of: "=") else {
            throw ConfigError("--set \(option): expected KEY=VALUE, e.g. --set params.population_size=2000")
        }
        let key = String(option[..<eq])
        let raw = String(option[option.index(after: eq)...])
        let path = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !path.isEmpty, path.allSatisfy({ !$0.isEmpty }) else {
            throw ConfigError("--set \(option): '\(key)' is not a dotted key path like params.population_size")
        }
        guard knownKeys.contains(path[0]) else {
            throw ConfigError("--set \(option): unknown key '\(path[0])'; known keys: \(knownKeys.joined(separator: ", "))")
        }
        var value = try SpecNode.parse(raw.isEmpty ? "''" : raw, file: "--set \(key)")
        if case .mapping(let pairs, _) = value, pairs.isEmpty, !raw.hasPrefix("{") {
            value = .scalar(raw, plain: true, origin: .init(file: "--set \(key)"))
        }
        try root.set(path: path, to: value, option: option)
    }

    static func validate(_ root: SpecNode, file: String) throws(ConfigError) -> SimulationSpec {
        var spec = SimulationSpec(
            name: "", command: [], code: [], inputs: [], outputs: nil, params: [:], seed: .auto, solver: [:], env: [:], envPassthrough: [],
            backend: "", timeout: nil, resources: [:], sourcePath: file)
        try fill(&spec, from: root, file: file, only: nil)
        return spec
    }

    /// `validate` of a spec that differs from the already validated `base` only under the
    /// top-level keys `changed` (a sweep point over its base spec): only those fields, and
    /// what depends on them, are validated again. The same field functions in the same order
    /// as `validate`, so the result and the first error are the same.
    static func revalidate(_ base: SimulationSpec, _ root: SpecNode, changed: Set<String>, file: String) throws(ConfigError) -> SimulationSpec {
        var spec = base
        try fill(&spec, from: root, file: file, only: changed)
        return spec
    }

    /// Sets the fields of `spec` from `root`: all of them, or those under the keys in `only`.
    private static func fill(_ spec: inout SimulationSpec, from root: SpecNode, file: String, only: Set<String>?) throws(ConfigError) {
        let fields: Fields
        if only != nil, case .mapping(let pairs, _) = root {
            // A point over a valid base: its keys are the base's and the paths the sweep
            // checked, so none is unknown; the few changed fields are found by scanning.
            fields = Fields(pairs: pairs)
        } else {
            fields = Fields(all: try knownFields(root, file: file))
        }
        func wants(_ key: String) -> Bool { only?.contains(key) ?? true }
        if wants("name") { spec.name = try name(fields["name"], file: file) }
        if wants("command") { spec.command = try command(fields["command"], file: file) }
        if wants("code") { spec.code = try pathList(fields["code"], key: "code", default: ["."]) }
        if wants("inputs") { spec.inputs = try pathList(fields["inputs"], key: "inputs", default: []) }
        if wants("outputs") { spec.outputs = try outputs(fields["outputs"]) }
        if wants("params") { spec.params = try params(fields["params"]) }
        if wants("seed") { spec.seed = try seed(fields["seed"]) }
        if wants("solver") { spec.solver = try solver(fields["solver"]) }
        if wants("env") { spec.env = try env(fields["env"]) }
        if wants("env_passthrough") { spec.envPassthrough = try passthrough(fields["env_passthrough"]) }
        if wants("backend") { spec.backend = try backend(fields["backend"]) }
        if wants("timeout") { spec.timeout = try timeout(fields["timeout"]) }
        if wants("resources") { spec.resources = try resources(fields["resources"]) }
        if wants("verify") { spec.verify = try verify(fields["verify"]) }
        if wants("report") { spec.reportY = try reportY(fields["report"]) }
        // The estimate is checked against the params.
        if wants("estimate") || wants("params") { spec.estimate = try estimate(fields["estimate"], params: spec.params) }
    }

    /// A spec's top-level fields by key: a dictionary, or the mapping's pairs scanned.
    private struct Fields {
        var all: [String: SpecNode]?
        var pairs: [(key: String, value: SpecNode)] = []

        init(all: [String: SpecNode]) { self.all = all }
        init(pairs: [(key: String, value: SpecNode)]) { self.pairs = pairs }

        subscript(_ key: String) -> SpecNode? {
            if let all { return all[key] }
            return pairs.last { $0.key == key }?.value
        }
    }

    // MARK: one function per top-level key

    /// The top-level keys, each known (an unknown one is an error with a did-you-mean).
    static func knownFields(_ root: SpecNode, file: String) throws(ConfigError) -> [String: SpecNode] {
        guard case .mapping(let pairs, _) = root else { throw ConfigError(at: file, "the spec must be a mapping") }
        var fields: [String: SpecNode] = [:]
        for (k, v) in pairs {
            guard knownKeys.contains(k) else {
                let hint = knownKeys.min(by: { editDistance($0, k) < editDistance($1, k) }).flatMap {
                    editDistance($0, k) <= 2 ? " (did you mean '\($0)'?)" : nil
                } ?? ""
                throw ConfigError(
                    "\(v.origin): unknown key '\(k)'\(hint); remove it or use one of: \(knownKeys.joined(separator: ", "))")
            }
            fields[k] = v
        }
        return fields
    }

    static func name(_ node: SpecNode?, file: String) throws(ConfigError) -> String {
        guard let nameNode = node else {
            throw ConfigError(at: file, "missing required key 'name'; add e.g. `name: my-simulation`")
        }
        let name = try string(nameNode, key: "name")
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }),
            name != ".", name != ".."
        else {
            throw ConfigError(at: nameNode.origin, "name '\(name)' may only contain letters, digits, '.', '_' and '-'")
        }
        return name
    }

    static func command(_ node: SpecNode?, file: String) throws(ConfigError) -> [String] {
        guard let commandNode = node else {
            throw ConfigError(at: file, "missing required key 'command'; add e.g. `command: [python3, sim.py]`")
        }
        let command: [String]
        switch commandNode {
        case .scalar(let s, let plain, let origin):
            // `command: 42` or `command: true`: YAML read a number or a flag, not a command line.
            if plain {
                switch YAMLCore.resolve(s) {
                case .int, .double, .bool, .null:
                    throw ConfigError(
                        "\(origin): command is \(s.isEmpty ? "empty" : "the value \(s)"), not a program to run; write the command line, "
                            + "e.g. `command: [python3, sim.py]` (quote it if the program really is named \(s))")
                default: break
                }
            }
            do { command = try ShellWords.split(s) } catch {
                throw ConfigError(at: origin, "command: \(error.message)")
            }
        case .sequence(let items, _):
            var out: [String] = []
            for (i, item) in items.enumerated() { out.append(try scalarText(item, key: "command[\(i)]")) }
            command = out
        case .mapping(_, let origin):
            throw ConfigError(at: origin, "command must be a list of arguments or a string, not a mapping")
        }
        guard let first = command.first, !first.isEmpty else {
            throw ConfigError(at: commandNode.origin, "command is empty; give the program to run, e.g. [python3, sim.py]")
        }
        return command
    }

    static func outputs(_ node: SpecNode?) throws(ConfigError) -> [String]? {
        guard let node else { return nil }
        var list: [String] = []
        for (i, p) in try stringList(node, key: "outputs").enumerated() {
            guard !p.hasPrefix("/"), !p.split(separator: "/").contains("..") else {
                throw ConfigError(at: node.origin, "outputs[\(i)] '\(p)' must be a path under $REPRO_OUTDIR, without '..'")
            }
            list.append(p)
        }
        return list
    }

    /// Any mapping.
    static func params(_ node: SpecNode?) throws(ConfigError) -> [String: JSONValue] {
        guard let node else { return [:] }
        guard case .mapping = node else {
            throw ConfigError(at: node.origin, "params must be a mapping of names to values, not a \(node.kindName)")
        }
        return try node.toJSON(path: "params").objectValue ?? [:]
    }

    static func seed(_ node: SpecNode?) throws(ConfigError) -> SimulationSpec.Seed {
        guard let node else { return .auto }
        let v = try node.toJSON(path: "seed")
        switch v {
        case .string("auto"), .null: return .auto
        case .int(let i) where i >= 0: return .fixed(i)
        default:
            throw ConfigError(at: node.origin, "seed must be an integer >= 0 or \"auto\", got \(describe(v))")
        }
    }

    /// Any keys; rtol and atol finite numbers >= 0.
    static func solver(_ node: SpecNode?) throws(ConfigError) -> [String: JSONValue] {
        guard let node else { return [:] }
        guard case .mapping(let sp, _) = node else {
            throw ConfigError(at: node.origin, "solver must be a mapping such as {rtol: 1e-6, atol: 1e-9}, not a \(node.kindName)")
        }
        let solver = try node.toJSON(path: "solver").objectValue ?? [:]
        for tol in ["rtol", "atol"] {
            guard let v = solver[tol] else { continue }
            let origin = sp.first(where: { $0.key == tol })?.value.origin ?? node.origin
            guard let d = v.numberValue else {
                throw ConfigError(at: origin, key: "solver.\(tol)", "must be a number such as 1e-6, got \(describe(v))")
            }
            guard d.isFinite, d >= 0 else {
                throw ConfigError(at: origin, key: "solver.\(tol)", "must be finite and >= 0, got \(describe(v)); tolerances are magnitudes, e.g. 1e-6")
            }
        }
        return solver
    }

    static func env(_ node: SpecNode?) throws(ConfigError) -> [String: String] {
        guard let node else { return [:] }
        guard case .mapping(let ep, _) = node else {
            throw ConfigError(at: node.origin, "env must be a mapping of variable names to values, not a \(node.kindName)")
        }
        var env: [String: String] = [:]
        for (k, v) in ep {
            guard isEnvName(k) else {
                throw ConfigError(at: v.origin, "env key '\(k)' is not a valid environment variable name")
            }
            guard !k.hasPrefix("REPRO_") else {
                throw ConfigError(at: v.origin, "env key '\(k)': REPRO_* variables are set by repro; rename it")
            }
            env[k] = try scalarText(v, key: "env.\(k)")
        }
        return env
    }

    static func passthrough(_ node: SpecNode?) throws(ConfigError) -> [String] {
        guard let node else { return [] }
        let names = try stringList(node, key: "env_passthrough")
        for n in names where !isEnvName(n) {
            throw ConfigError(at: node.origin, "env_passthrough entry '\(n)' is not a valid environment variable name")
        }
        return Array(Set(names)).sorted()
    }

    /// `estimate: {seconds: EXPR, scale: params.X}`: how long a run takes, for routing (not in
    /// the key). The expression is checked against the params here, so a typo stops at once.
    static func estimate(_ node: SpecNode?, params: [String: JSONValue]) throws(ConfigError) -> EstimateSpec? {
        guard let node else { return nil }
        guard case .mapping(let pairs, _) = node else {
            throw ConfigError(at: node.origin, "estimate must be a mapping such as {seconds: \"params.n * 0.5\", scale: params.n}")
        }
        var seconds: EstimateExpression?
        var scale: [String]?
        for (k, v) in pairs {
            guard case .scalar(let t, _, _) = v, !t.isEmpty else { throw ConfigError(at: v.origin, key: "estimate.\(k)", "must be a single value") }
            switch k {
            case "seconds":
                let expr = try EstimateExpression(t, origin: "\(v.origin)")
                _ = try expr.evaluate(params: params, origin: "\(v.origin)")
                seconds = expr
            case "scale":
                let path = t.split(separator: ".").map(String.init)
                guard path.count >= 2, path[0] == "params" else {
                    throw ConfigError(at: v.origin, key: "estimate.scale", "must name a numeric param, such as params.population_size")
                }
                guard EstimateSpec.value(Array(path.dropFirst()), in: params) != nil else {
                    throw ConfigError(at: v.origin, "estimate.scale: '\(t)' is not a numeric param of this spec; params are: \(params.keys.sorted().joined(separator: ", "))")
                }
                scale = Array(path.dropFirst())
            default: throw ConfigError(at: v.origin, "unknown key 'estimate.\(k)'; known: seconds, scale")
            }
        }
        return EstimateSpec(seconds: seconds, scale: scale, origin: "\(node.origin)")
    }

    static func backend(_ node: SpecNode?) throws(ConfigError) -> String {
        guard let node else { return Backends.auto }
        let backend = try string(node, key: "backend")
        // Named backends live in .repro.yaml: the name is checked against it when the spec runs.
        guard Backends.isValidName(backend) else {
            throw ConfigError(
                "\(node.origin): backend '\(backend)' is not a backend name; use \(Backends.builtIn.joined(separator: ", ")) or a name "
                    + "configured under `backends:` in .repro.yaml (letters, digits, '-' and '_')")
        }
        return backend
    }

    static func timeout(_ node: SpecNode?) throws(ConfigError) -> Double? {
        guard let node else { return nil }
        let text = try scalarText(node, key: "timeout")
        guard let t = DurationText.seconds(text) else {
            throw ConfigError(at: node.origin, "timeout '\(text)' is not a duration; write e.g. 90s, 30m, 2h, 1h30m or 1d")
        }
        return t
    }

    static func resources(_ node: SpecNode?) throws(ConfigError) -> [String: JSONValue] {
        guard let node else { return [:] }
        guard case .mapping(let rp, _) = node else {
            throw ConfigError(at: node.origin, "resources must be a mapping such as {cpus: 4, memory: 8G}")
        }
        let resources = try node.toJSON(path: "resources").objectValue ?? [:]
        for (k, v) in rp {
            guard resourceKeys.contains(k) else {
                throw ConfigError(at: v.origin, "unknown resource '\(k)'; use \(resourceKeys.joined(separator: ", "))")
            }
            // Checked here, so a bad value (from the file, --set or a sweep axis) stops
            // before anything is recorded or submitted.
            do throws(ConfigError) { _ = try SlurmBackend.resourceValue(k, resources[k] ?? .null) } catch {
                throw ConfigError(at: v.origin, "\(error.message)")
            }
        }
        return resources
    }

    static func verify(_ node: SpecNode?) throws(ConfigError) -> Tolerance {
        var verify = Tolerance.exact
        guard let node else { return verify }
        guard case .mapping(let vp, _) = node else {
            throw ConfigError(at: node.origin, "verify must be a mapping such as {rtol: 1e-9, atol: 0, ulps: 16}")
        }
        for (k, v) in vp {
            let value = try v.toJSON(path: "verify.\(k)")
            switch k {
            case "rtol", "atol":
                guard let d = value.numberValue, d.isFinite, d >= 0 else {
                    throw ConfigError(at: v.origin, key: "verify.\(k)", "must be a finite number >= 0")
                }
                if k == "rtol" { verify.rtol = d } else { verify.atol = d }
            case "ulps":
                guard let i = value.intValue, i >= 0 else { throw ConfigError(at: v.origin, key: "verify.ulps", "must be a whole number >= 0") }
                verify.ulps = UInt64(i)
            default:
                throw ConfigError(at: v.origin, "unknown key 'verify.\(k)'; use rtol, atol, ulps")
            }
        }
        return verify
    }

    static func reportY(_ node: SpecNode?) throws(ConfigError) -> [String] {
        guard let node else { return [] }
        guard case .mapping(let rp, _) = node else {
            throw ConfigError(at: node.origin, "report must be a mapping such as {y: \"result.json:$.survival_fraction\"}")
        }
        var reportY: [String] = []
        for (k, v) in rp {
            guard k == "y" else { throw ConfigError(at: v.origin, "unknown key 'report.\(k)'; use y") }
            reportY = try stringList(v, key: "report.y")
            for y in reportY where !y.contains(":") {
                throw ConfigError(
                    "\(v.origin): report.y '\(y)' must name an output and a value: FILE:$.json.path or FILE.csv:column")
            }
        }
        return reportY
    }
}
