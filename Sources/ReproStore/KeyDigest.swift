import ReproSupport

/// A cache key (64 hex digits) in 32 bytes: how a large sweep holds its points' keys (a hex
/// String is a 96-byte allocation each).
package struct KeyDigest: Hashable, Comparable, Sendable {
    let a: UInt64, b: UInt64, c: UInt64, d: UInt64

    /// nil unless `hex` is 64 lowercase hex digits (what CacheKey.compute gives).
    public init?(hex: String) {
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
    public init(bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count == 32, "a key digest is 32 bytes")
        func word(_ at: Int) -> UInt64 { UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        (a, b, c, d) = (word(0), word(8), word(16), word(24))
    }

    /// The order of the hex text (words compared as big-endian numbers).
    public static func < (l: KeyDigest, r: KeyDigest) -> Bool { (l.a, l.b, l.c, l.d) < (r.a, r.b, r.c, r.d) }

    package var hex: String {
        var words = (a.bigEndian, b.bigEndian, c.bigEndian, d.bigEndian)
        return withUnsafeBytes(of: &words) { Hashing.hex($0) }
    }
}
