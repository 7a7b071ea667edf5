import Crypto
import Foundation

/// A blob in the store: the SHA-256 and size of its uncompressed content.
public struct BlobRef: Sendable, Equatable {
    public var sha256: String
    public var size: Int64
    public var storedSize: Int64
}

extension Store {
    /// `objects/ab/cdef…`: the first two hex digits fan out the directory, as git does.
    public func blobPath(_ sha256: String) -> String {
        objectsDir + "/" + sha256.prefix(2) + "/" + sha256.dropFirst(2)
    }

    public func hasBlob(_ sha256: String) -> Bool {
        access(blobPath(sha256), F_OK) == 0
    }

    /// Stores a file's content, streaming: hashed and compressed in one pass, written to a temp
    /// file, fsynced, renamed into place. Content already in the store is not written twice.
    public func putFile(atPath path: String) throws(StoreError) -> BlobRef {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError("cannot read \(path): \(FileIO.errnoText())") }
        defer { close(fd) }
        // Small files (most outputs, stdout, stderr): hash in memory first, and skip writing
        // entirely when the content is already stored.
        var st = stat()
        if fstat(fd, &st) == 0, st.st_size == 0 {
            // Empty (most stderr): the one empty blob, written once.
            let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            var existing = stat()
            if stat(blobPath(empty), &existing) == 0 { return BlobRef(sha256: empty, size: 0, storedSize: Int64(existing.st_size)) }
            return try putBytes([])
        }
        if st.st_size <= 1 << 20 {
            let bytes = try FileIO.readAll(path)
            let hash = Hashing.sha256Hex(bytes)
            var existing = stat()
            if stat(blobPath(hash), &existing) == 0 {
                return BlobRef(sha256: hash, size: Int64(bytes.count), storedSize: Int64(existing.st_size))
            }
            return try putBytes(bytes)
        }
        return try putStream(source: path) { buf in
            while true {
                let n = read(fd, buf.baseAddress, buf.count)
                if n < 0 && errno == EINTR { continue }
                return n
            }
        }
    }

    /// Stores an in-memory buffer (stdout, a patch).
    public func putBytes(_ bytes: [UInt8]) throws(StoreError) -> BlobRef {
        var offset = 0
        return try putStream(source: "memory") { buf in
            let n = min(buf.count, bytes.count - offset)
            if n > 0 {
                bytes.withUnsafeBytes { src in
                    buf.baseAddress!.copyMemory(from: src.baseAddress! + offset, byteCount: n)
                }
            }
            offset += n
            return n
        }
    }

    private func putStream(source: String, read: (UnsafeMutableRawBufferPointer) -> Int) throws(StoreError) -> BlobRef {
        let tmp = tmpDir + "/blob-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        let out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o444)
        guard out >= 0 else { throw StoreError("cannot create \(tmp): \(FileIO.errnoText()); check the store's permissions") }
        var closed = false
        defer {
            if !closed { close(out) }
        }
        do throws(StoreError) {
            let z = try ZStream(.deflate, level: 6)
            var hasher = SHA256()
            var size: Int64 = 0
            var stored: Int64 = 0
            let chunk = 1 << 20
            let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
            defer { buf.deallocate() }
            let sink: (UnsafeRawBufferPointer) throws(StoreError) -> Void = { piece throws(StoreError) in
                try FileIO.writeAll(out, piece, path: tmp)
                stored += Int64(piece.count)
            }
            while true {
                let n = read(buf)
                if n < 0 { throw StoreError("error reading \(source): \(FileIO.errnoText())") }
                let piece = UnsafeRawBufferPointer(rebasing: buf[0..<n])
                hasher.update(bufferPointer: piece)
                size += Int64(n)
                _ = try z.process(piece, finish: n == 0, sink: sink)
                if n == 0 { break }
            }
            let hash = Hashing.hex(hasher.finalize())
            let final = blobPath(hash)
            if hasBlob(hash) {
                unlink(tmp)
                return BlobRef(sha256: hash, size: size, storedSize: stored)
            }
            guard fsync(out) == 0 else { throw StoreError("fsync \(tmp) failed: \(FileIO.errnoText())") }
            closed = true
            guard close(out) == 0 else { throw StoreError("close \(tmp) failed: \(FileIO.errnoText())") }
            let dir = objectsDir + "/" + hash.prefix(2)
            if mkdir(dir, 0o755) != 0 && errno != EEXIST {
                throw StoreError("cannot create \(dir): \(FileIO.errnoText())")
            }
            guard rename(tmp, final) == 0 else { throw StoreError("cannot move a blob into \(final): \(FileIO.errnoText())") }
            FileIO.fsyncDirectory(dir)
            return BlobRef(sha256: hash, size: size, storedSize: stored)
        } catch {
            unlink(tmp)
            throw error
        }
    }

    /// The uncompressed content of a blob, verified against its hash.
    public func readBlob(_ sha256: String) throws(StoreError) -> [UInt8] {
        let path = blobPath(sha256)
        guard hasBlob(sha256) else {
            throw StoreError("blob \(sha256.prefix(12)) is missing from \(objectsDir); run `repro fsck` to see what else is")
        }
        let data = try Zlib.decompress(try FileIO.readAll(path))
        guard Hashing.sha256Hex(data) == sha256 else {
            throw StoreError("blob \(sha256.prefix(12)) at \(path) is corrupt (its content no longer matches its hash)")
        }
        return data
    }

    /// Writes a blob's content to `path` (temp file + rename), verifying the hash on the way.
    public func materializeBlob(_ sha256: String, to path: String) throws(StoreError) {
        let src = blobPath(sha256)
        let input = open(src, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else {
            throw StoreError("blob \(sha256.prefix(12)) is missing from \(objectsDir); run `repro fsck` to see what else is")
        }
        defer { close(input) }
        let tmp = path + ".tmp-\(getpid())"
        let out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard out >= 0 else { throw StoreError("cannot create \(tmp): \(FileIO.errnoText())") }
        do throws(StoreError) {
            let z = try ZStream(.inflate)
            var hasher = SHA256()
            let chunk = 1 << 18
            let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
            defer { buf.deallocate() }
            var ended = false
            while !ended {
                let n = read(input, buf.baseAddress, chunk)
                if n < 0 { if errno == EINTR { continue }; throw StoreError("error reading \(src): \(FileIO.errnoText())") }
                if n == 0 { break }
                ended = try z.process(UnsafeRawBufferPointer(rebasing: buf[0..<n]), finish: false) { piece throws(StoreError) in
                    hasher.update(bufferPointer: piece)
                    try FileIO.writeAll(out, piece, path: tmp)
                }
            }
            guard ended else { throw StoreError("blob \(sha256.prefix(12)) at \(src) is truncated") }
            guard Hashing.hex(hasher.finalize()) == sha256 else {
                throw StoreError("blob \(sha256.prefix(12)) at \(src) is corrupt (its content no longer matches its hash)")
            }
            guard close(out) == 0 else { throw StoreError("close \(tmp) failed: \(FileIO.errnoText())") }
            guard rename(tmp, path) == 0 else { throw StoreError("cannot move \(tmp) to \(path): \(FileIO.errnoText())") }
        } catch {
            close(out)
            unlink(tmp)
            throw error
        }
    }
}

extension Store {
    /// How many blobs the database knows of.
    public func blobCount() throws(StoreError) -> Int {
        Int(try db.prepare("SELECT count(*) FROM blobs").query { $0.int(0) }.first ?? 0)
    }
}
