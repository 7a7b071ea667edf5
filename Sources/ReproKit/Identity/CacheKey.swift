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

    /// `record(p).canonicalBytes`, written directly (keys in canonical order).
    static func canonicalRecord(_ p: Parts) -> [UInt8] {
        var w = CanonicalWriter()
        w.key("code")
        w.value(p.code.keyJSON)
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
        var words: [UInt64] = []
        words.reserveCapacity(4)
        var w: UInt64 = 0
        var n = 0
        for ch in hex.utf8 {
            let v: UInt8
            switch ch {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = ch - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): v = ch - UInt8(ascii: "a") + 10
            default: return nil
            }
            w = w << 4 | UInt64(v)
            n += 1
            if n % 16 == 0 {
                words.append(w)
                w = 0
            }
        }
        guard n == 64 else { return nil }
        (a, b, c, d) = (words[0], words[1], words[2], words[3])
    }

    var hex: String {
        let table = Array("0123456789abcdef".utf8)
        return String(unsafeUninitializedCapacity: 64) { buf in
            var i = 0
            for w in [a, b, c, d] {
                for shift in stride(from: 60, through: 0, by: -4) {
                    buf[i] = table[Int((w >> UInt64(shift)) & 0xF)]
                    i += 1
                }
            }
            return 64
        }
    }
}
