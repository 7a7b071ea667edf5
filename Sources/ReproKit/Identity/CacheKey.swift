import Crypto
import ReproSupport
import ReproStore

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
        Hashing.sha256Hex(canonicalRecord(p))
    }

    /// The key as 32 bytes, `code` the canonical bytes of `p.code.keyJSON` (a sweep holds its
    /// points' keys so; no hex written and parsed back per point).
    static func digest(_ p: Parts, code: [UInt8]) -> KeyDigest {
        SHA256.hash(data: canonicalRecord(p, code: code)).withUnsafeBytes { KeyDigest(bytes: $0) }
    }

    /// `record(p).canonicalBytes`, written directly (keys in canonical order). `code`: the
    /// canonical bytes of `p.code.keyJSON` when the caller has them (a sweep's points share one).
    static func canonicalRecord(_ p: Parts, code: [UInt8]? = nil) -> [UInt8] {
        canonicalRecord(
            configHash: p.configHash, code: code ?? p.code.keyJSON.canonicalBytes, patchHash: p.patchHash, seed: p.seed, solver: p.solver,
            inputs: p.inputs, env: p.env, command: p.command)
    }

    /// The key record from its fields, the code identity as canonical JSON bytes: what a record
    /// that came from elsewhere is checked against (`RecordIntegrity`).
    static func canonicalRecord(
        configHash: String, code: [UInt8], patchHash: String?, seed: Int64, solver: [String: JSONValue], inputs: [InputFile],
        env: [String: String], command: [String]
    ) -> [UInt8] {
        var w = CanonicalWriter()
        w.key("code")
        w.raw(code)
        w.key("command")
        w.strings(command)
        w.key("config_hash")
        w.string(configHash)
        w.key("dirty_patch")
        if let h = patchHash { w.string(h) } else { w.null() }
        w.key("env")
        w.stringObject(env)
        w.key("inputs")
        w.value(.array(inputs.map { ["path": .string($0.path), "sha256": .string($0.sha256)] }))
        w.key("seed")
        w.int(seed)
        w.key("solver")
        w.object(solver)
        w.key("v")
        w.int(version)
        return w.finish()
    }
}
