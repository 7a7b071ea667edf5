import CZlib
import Foundation
import ReproSupport

/// Owns one zlib stream (deflate or inflate) and frees it in deinit.
final class ZStream {
    enum Mode { case deflate, inflate }
    private var stream = z_stream()
    private let mode: Mode

    init(_ mode: Mode, level: Int32 = 6) throws(StoreError) {
        self.mode = mode
        let rc = mode == .deflate ? repro_deflate_init(&stream, level) : repro_inflate_init(&stream)
        guard rc == Z_OK else { throw StoreError("zlib: \(mode == .deflate ? "deflateInit" : "inflateInit") failed (\(rc))") }
    }

    deinit {
        if mode == .deflate { deflateEnd(&stream) } else { inflateEnd(&stream) }
    }

    /// Feeds `input` through the stream and hands each produced chunk to `sink`.
    /// `finish` flushes the stream's end. Inputs are fed in pieces under 4 GiB (avail_in is 32-bit).
    func process(
        _ input: UnsafeRawBufferPointer, finish: Bool, sink: (UnsafeRawBufferPointer) throws(StoreError) -> Void
    ) throws(StoreError) -> Bool {
        let outSize = 1 << 18
        let out = UnsafeMutablePointer<UInt8>.allocate(capacity: outSize)
        defer { out.deallocate() }
        var offset = 0
        var streamEnded = false
        // The loop shape is zlib's zpipe.c: drain output until a call leaves room in it.
        repeat {
            let piece = min(input.count - offset, Int(UInt32.max / 2))
            let lastPiece = offset + piece >= input.count
            stream.next_in = input.baseAddress.map {
                UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: UInt8.self)) + offset
            }
            stream.avail_in = UInt32(piece)
            repeat {
                stream.next_out = out
                stream.avail_out = UInt32(outSize)
                if mode == .deflate {
                    let rc = deflate(&stream, finish && lastPiece ? Z_FINISH : Z_NO_FLUSH)
                    guard rc != Z_STREAM_ERROR else { throw StoreError("zlib: deflate failed") }
                } else {
                    let rc = inflate(&stream, Z_NO_FLUSH)
                    guard rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR else {
                        throw StoreError("zlib: the compressed data is corrupt (inflate returned \(rc))")
                    }
                    if rc == Z_STREAM_END { streamEnded = true }
                }
                let produced = outSize - Int(stream.avail_out)
                if produced > 0 { try sink(UnsafeRawBufferPointer(start: out, count: produced)) }
            } while stream.avail_out == 0 && !streamEnded
            offset += piece
        } while offset < input.count && !streamEnded
        // Bytes after the end of the stream: the file is not what was written.
        if streamEnded && (stream.avail_in > 0 || offset < input.count) {
            throw StoreError("zlib: \(Int(stream.avail_in) + input.count - offset) byte(s) follow the end of the compressed data")
        }
        return streamEnded
    }
}

enum Zlib {
    /// Compresses a whole buffer (small blobs, tests).
    static func compress(_ data: [UInt8], level: Int32 = 6) throws(StoreError) -> [UInt8] {
        let z = try ZStream(.deflate, level: level)
        var out = [UInt8]()
        var result: Result<Bool, StoreError> = .success(false)
        data.withUnsafeBytes { buf in
            result = Result { () throws(StoreError) -> Bool in
                try z.process(buf, finish: true) { chunk throws(StoreError) in out.append(contentsOf: chunk) }
            }
        }
        _ = try result.get()
        return out
    }

    static func decompress(_ data: [UInt8]) throws(StoreError) -> [UInt8] {
        let z = try ZStream(.inflate)
        var out = [UInt8]()
        var result: Result<Bool, StoreError> = .success(false)
        data.withUnsafeBytes { buf in
            result = Result { () throws(StoreError) -> Bool in
                try z.process(buf, finish: true) { chunk throws(StoreError) in out.append(contentsOf: chunk) }
            }
        }
        guard try result.get() else { throw StoreError("zlib: the compressed data is truncated") }
        return out
    }
}
