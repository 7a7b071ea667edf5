import Crypto

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

/// A cache key (64 hex digits) in 32 bytes: how a large sweep holds its points' keys (a hex
/// String is a 96-byte allocation each).
struct KeyDigest: Hashable, Comparable, Sendable {
    let a: UInt64, b: UInt64, c: UInt64, d: UInt64

    /// nil unless `hex` is 64 lowercase hex digits (what CacheKey.compute gives).
    init?(hex: String) {
        var hex = hex
        guard let d = hex.withUTF8({ KeyDigest(utf8: $0) }) else { return nil }
        self = d
    }

    /// From the 64 lowercase hex digits of a key's text (nil unless exactly that).
    init?(utf8 text: UnsafeBufferPointer<UInt8>) {
        guard text.count == 64 else { return nil }
        var w: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        var bad = false
        func word(_ at: Int) -> UInt64 {
            var x: UInt64 = 0
            for i in at..<at + 16 {
                let ch = text[i]
                let v: UInt8
                if ch &- 0x30 < 10 {
                    v = ch &- 0x30
                } else if ch &- 0x61 < 6 {
                    v = ch &- 0x61 &+ 10
                } else {
                    bad = true
                    v = 0
                }
                x = x << 4 | UInt64(v)
            }
            return x
        }
        w = (word(0), word(16), word(32), word(48))
        if bad { return nil }
        (a, b, c, d) = w
    }

    /// From the 32 bytes of a SHA-256 digest.
    init(bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count == 32, "a key digest is 32 bytes")
        func word(_ at: Int) -> UInt64 { UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        (a, b, c, d) = (word(0), word(8), word(16), word(24))
    }

    /// The order of the hex text (words compared as big-endian numbers).
    static func < (l: KeyDigest, r: KeyDigest) -> Bool { (l.a, l.b, l.c, l.d) < (r.a, r.b, r.c, r.d) }

    var hex: String {
        var words = (a.bigEndian, b.bigEndian, c.bigEndian, d.bigEndian)
        return withUnsafeBytes(of: &words) { Hashing.hex($0) }
    }
}
