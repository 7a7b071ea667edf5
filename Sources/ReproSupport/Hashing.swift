import Crypto
import Foundation

/// SHA-256 helpers; every content address in repro is a lowercase hex SHA-256.
package enum Hashing {
    /// 64 lower-case hex digits: what every blob and key name is (checked before such a name
    /// becomes a path or an object key).
    package static func isSHA256Hex(_ s: String) -> Bool {
        s.utf8.count == 64 && s.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    package static func sha256Hex(_ data: some DataProtocol) -> String {
        hex(SHA256.hash(data: data))
    }

    package static func sha256Hex(_ string: String) -> String {
        sha256Hex(Array(string.utf8))
    }

    /// HMAC-SHA256 of a string under `key`, as hex.
    package static func hmacHex(_ string: String, key: SymmetricKey) -> String {
        hex(HMAC<SHA256>.authenticationCode(for: Array(string.utf8), using: key))
    }

    /// Lower-case hex of a digest (every SHA-256 and HMAC of repro; contiguous bytes: written
    /// straight into the string, no array or iterator per call).
    package static func hex(_ digest: some ContiguousBytes) -> String {
        digest.withUnsafeBytes { bytes in
            String(unsafeUninitializedCapacity: bytes.count * 2) { out in
                for (i, b) in bytes.enumerated() {
                    out[2 * i] = hexDigit(b >> 4)
                    out[2 * i + 1] = hexDigit(b & 0x0F)
                }
                return bytes.count * 2
            }
        }
    }

    @inline(__always) static func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? 0x30 + v : 0x57 + v }

    /// Streams a file through SHA-256 in 1 MiB reads (no mmap: files may be on NFS).
    package static func sha256OfFile(atPath path: String) throws(StoreError) -> (hash: String, size: Int64) {
        // Non-blocking open, then a type check: opening a FIFO for reading would otherwise wait
        // for a writer forever.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError("cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            throw StoreError("\(path) is \(FileWalk.kindName(st.st_mode)), not a regular file; repro only hashes regular files")
        }
        var hasher = SHA256()
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
        defer { buffer.deallocate() }
        var total: Int64 = 0
        while true {
            let n = read(fd, buffer.baseAddress, chunk)
            if n < 0 {
                if errno == EINTR { continue }
                throw StoreError("error reading \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            total += Int64(n)
        }
        return (hex(hasher.finalize()), total)
    }

    /// The default seed for `seed: auto`: the first 31 bits of the config hash.
    package static func seed(fromHex hash: String) -> Int64 {
        let prefix = hash.prefix(8)
        let v = UInt32(prefix, radix: 16) ?? 0
        return Int64(v & 0x7FFF_FFFF)
    }
}
