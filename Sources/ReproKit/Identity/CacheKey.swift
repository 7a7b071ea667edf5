/// The cache key: SHA-256 over a versioned canonical record of everything that decides a
/// run's result. Backend, resources and timeout are recorded with a run but are not in the key.
public enum CacheKey {
    /// Bump when the record's shape or meaning changes; old entries then simply miss.
    public static let version: Int64 = 1

    public struct Parts: Sendable {
        public var configHash: String
        public var code: CodeIdentity
        public var patchHash: String?
        public var seed: Int64
        public var solver: [String: JSONValue]
        public var inputs: [InputFile]
        public var env: [String: String]
        public var command: [String]
    }

    public static func record(_ p: Parts) -> JSONValue {
        .object([
            "v": .int(version),
            "config_hash": .string(p.configHash),
            "code": p.code.keyJSON,
            "dirty_patch": p.patchHash.json,
            "seed": .int(p.seed),
            "solver": .object(p.solver),
            "inputs": .array(p.inputs.map { ["path": .string($0.path), "sha256": .string($0.sha256)] }),
            "env": .object(p.env.mapValues { .string($0) }),
            "command": .array(p.command.map { .string($0) }),
        ])
    }

    public static func compute(_ p: Parts) -> String {
        Hashing.sha256Hex(record(p).canonical)
    }
}
