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

    static func compute(_ p: Parts, code: [UInt8]) -> String {
        Hashing.sha256Hex(canonicalRecord(p, code: code))
    }

    /// `record(p).canonicalBytes`, written directly (keys in canonical order). `code`: the
    /// canonical bytes of `p.code.keyJSON` when the caller has them (a sweep's points share one).
    static func canonicalRecord(_ p: Parts, code: [UInt8]? = nil) -> [UInt8] {
        var w = CanonicalWriter()
        w.key("code")
        if let code { w.raw(code) } else { w.value(p.code.keyJSON) }
        w.key("command")
        w.strings(p.command)
        w.key("config_hash")
        w.string(p.configHash)
        w.key("dirty_patch")
        if let h = p.patchHash { w.string(h) } else { w.null() }
        w.key("env")
        w.stringObject(p.env)
        w.key("inputs")
        w.value(.array(p.inputs.map { ["path": .string($0.path), "sha256": .string($0.sha256)] }))
        w.key("seed")
        w.int(p.seed)
        w.key("solver")
        w.object(p.solver)
        w.key("v")
        w.int(version)
        return w.finish()
    }
}

/// A cache key (64 hex digits) in 32 bytes: how a large sweep holds its points' keys (a hex
/// String is a 96-byte allocation each).
struct KeyDigest: Hashable, Sendable {
    let a: UInt64, b: UInt64, c: UInt64, d: UInt64

    /// nil unless `hex` is 64 lowercase hex digits (what CacheKey.compute gives).
    init?(hex: String) {
        var w: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        var n = 0
        for ch in hex.utf8 {
            let v: UInt64
            switch ch {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = UInt64(ch - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): v = UInt64(ch - UInt8(ascii: "a") + 10)
            default: return nil
            }
            switch n >> 4 {
            case 0: w.0 = w.0 << 4 | v
            case 1: w.1 = w.1 << 4 | v
            case 2: w.2 = w.2 << 4 | v
            case 3: w.3 = w.3 << 4 | v
            default: return nil
            }
            n += 1
        }
        guard n == 64 else { return nil }
        (a, b, c, d) = w
    }

    var hex: String {
        var words = (a.bigEndian, b.bigEndian, c.bigEndian, d.bigEndian)
        return withUnsafeBytes(of: &words) { Hashing.hex($0) }
    }
}
