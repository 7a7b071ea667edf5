import Crypto
import Foundation
import ReproSupport

/// A blob in the store: the SHA-256 and size of its uncompressed content.
package struct BlobRef: Sendable, Equatable {
    package var sha256: String
    package var size: Int64
    var storedSize: Int64
}

extension Store {
    /// `objects/ab/cdef…`: the first two hex digits fan out the directory, as git does.
    func blobPath(_ sha256: String) -> String {
        objectsDir + "/" + sha256.prefix(2) + "/" + sha256.dropFirst(2)
    }

    package func hasBlob(_ sha256: String) -> Bool {
        access(blobPath(sha256), F_OK) == 0
    }

    /// Stores a file's content, streaming: hashed and compressed in one pass, written to a temp
    /// file, fsynced, renamed into place. Content already in the store is not written twice.
    package func putFile(atPath path: String) throws(StoreError) -> BlobRef {
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
            if stat(blobPath(empty), &existing) == 0, isIntact(empty) {
                return BlobRef(sha256: empty, size: 0, storedSize: Int64(existing.st_size))
            }
            return try putBytes([])
        }
        if st.st_size <= 1 << 20 {
            let bytes = try FileIO.readAll(path)
            let hash = Hashing.sha256Hex(bytes)
            var existing = stat()
            if stat(blobPath(hash), &existing) == 0, isIntact(hash) {
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

    /// Stores a buffer that a record will name later (a dirty patch), with its `blobs` row at
    /// once and under the blob write lock: neither gc nor fsck can take it for an orphan.
    package func putReferencedBytes(_ bytes: [UInt8]) throws -> BlobRef {
        try withBlobWriteLock {
            let ref = try putBytes(bytes)
            try db.transaction { () throws(StoreError) in try insertBlobRows([ref]) }
            return ref
        }
    }

    /// Stores an in-memory buffer (stdout, a patch).
    package func putBytes(_ bytes: [UInt8]) throws(StoreError) -> BlobRef {
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
        let out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o444)
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
            // Deduplicate only onto a blob that is still what its name says: a corrupt one is
            // replaced by this good copy, so the key can be served again.
            if hasBlob(hash), isIntact(hash) {
                unlink(tmp)
                return BlobRef(sha256: hash, size: size, storedSize: stored)
            }
            guard fsync(out) == 0 else { throw StoreError.posix("fsync \(tmp) failed") }
            closed = true
            guard close(out) == 0 else { throw StoreError.posix("close \(tmp) failed") }
            let dir = objectsDir + "/" + hash.prefix(2)
            if mkdir(dir, 0o755) != 0 && errno != EEXIST {
                throw StoreError("cannot create \(dir): \(FileIO.errnoText())")
            }
            guard rename(tmp, final) == 0 else { throw StoreError("cannot move a blob into \(final): \(FileIO.errnoText())") }
            FileIO.fsyncDirectory(dir)
            verifiedBlobs.insert(hash)
            return BlobRef(sha256: hash, size: size, storedSize: stored)
        } catch {
            unlink(tmp)
            throw error
        }
    }

    /// The uncompressed content of a blob, verified against its hash. For blobs small enough
    /// to hold in memory (`limit` bytes uncompressed); larger ones are streamed by the callers.
    package func readBlob(_ sha256: String, limit: Int = 256 << 20) throws(StoreError) -> [UInt8] {
        var data: [UInt8] = []
        try inflateBlob(sha256) { piece throws(StoreError) in
            guard data.count + piece.count <= limit else {
                throw StoreError("blob \(sha256.prefix(12)) is larger than \(limit >> 20) MiB; too large to read into memory")
            }
            data.append(contentsOf: piece)
        }
        return data
    }

    /// Streams a blob's content, verified, into `sink` piece by piece (`repro logs`).
    package func streamBlob(_ sha256: String, into sink: (UnsafeRawBufferPointer) -> Void) throws(StoreError) {
        try inflateBlob(sha256) { piece throws(StoreError) in sink(piece) }
    }

    /// What a check of one blob against its name found.
    enum BlobHealth: Sendable, Equatable {
        case intact
        case missing
        case corrupt(String)
    }

    /// Streams a blob through inflate and SHA-256 without keeping it in memory.
    func checkBlob(_ sha256: String) -> BlobHealth {
        guard hasBlob(sha256) else { return .missing }
        do throws(StoreError) {
            try inflateBlob(sha256) { _ throws(StoreError) in }
            return .intact
        } catch {
            return hasBlob(sha256) ? .corrupt(error.message) : .missing
        }
    }

    /// True when the blob exists and its content still hashes to its name. Remembered for the
    /// life of this Store, so a sweep that stores the same empty stderr 10,000 times reads it once.
    func isIntact(_ sha256: String) -> Bool {
        if verifiedBlobs.contains(sha256) { return true }
        guard checkBlob(sha256) == .intact else { return false }
        verifiedBlobs.insert(sha256)
        return true
    }

    /// Writes a blob's content to `path` (temp file + rename), verifying the hash on the way.
    /// The temp file is created exclusively and never through a symlink, so nothing planted in
    /// a shared results folder can redirect the write.
    package func materializeBlob(_ sha256: String, to path: String) throws(StoreError) {
        let tmp = path + ".tmp-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        let out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard out >= 0 else { throw StoreError("cannot create \(tmp): \(FileIO.errnoText())") }
        do throws(StoreError) {
            try inflateBlob(sha256) { piece throws(StoreError) in try FileIO.writeAll(out, piece, path: tmp) }
            guard close(out) == 0 else { throw StoreError.posix("close \(tmp) failed") }
            guard rename(tmp, path) == 0 else { throw StoreError("cannot move \(tmp) to \(path): \(FileIO.errnoText())") }
        } catch {
            close(out)
            unlink(tmp)
            throw error
        }
    }

    /// Writes a blob's content to `name` inside `root`, never through a link on the way and
    /// never outside `root` (the name is checked: a pulled record's `../../.git/config` is
    /// refused). Temp file and rename inside the same folder, as `materializeBlob(_:to:)`.
    package func materializeBlob(_ sha256: String, into root: String, name: String) throws(StoreError) {
        let (dir, leaf) = try SafePath.openParent(root: root, rel: name)
        defer { close(dir) }
        try materializeBlob(sha256, in: dir, leaf: leaf, path: root + "/" + name)
    }

    /// The same, into folder `dir` already opened by `SafePath.openParent` (`path` for messages).
    package func materializeBlob(_ sha256: String, in dir: Int32, leaf: String, path: String) throws(StoreError) {
        let tmp = ".\(leaf.prefix(200)).tmp-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        let out = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard out >= 0 else { throw StoreError.posix("cannot create \(path).tmp") }
        do throws(StoreError) {
            try inflateBlob(sha256) { piece throws(StoreError) in try FileIO.writeAll(out, piece, path: path) }
            guard close(out) == 0 else { throw StoreError.posix("close \(path) failed") }
            guard renameat(dir, tmp, dir, leaf) == 0 else { throw StoreError.posix("cannot write \(path)") }
        } catch {
            close(out)
            unlinkat(dir, tmp, 0)
            throw error
        }
    }

    /// Inflates a blob piece by piece into `sink`, then checks the content against its name;
    /// throws when the blob is missing, truncated or corrupt (after `sink` saw the bytes).
    func inflateBlob(_ sha256: String, into sink: (UnsafeRawBufferPointer) throws(StoreError) -> Void) throws(StoreError) {
        let src = blobPath(sha256)
        let input = open(src, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else {
            throw StoreError("blob \(sha256.prefix(12)) is missing from \(objectsDir); run `repro fsck` to see what else is")
        }
        defer { close(input) }
        let z = try ZStream(.inflate)
        var hasher = SHA256()
        let chunk = 1 << 18
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
        defer { buf.deallocate() }
        var ended = false
        while !ended {
            let n = read(input, buf.baseAddress, chunk)
            if n < 0 {
                if errno == EINTR { continue }
                throw StoreError("error reading \(src): \(FileIO.errnoText())")
            }
            if n == 0 { break }
            // The sink's own failures (a full disk, a size limit) are not the blob's fault.
            var sinkError: StoreError?
            do throws(StoreError) {
                ended = try z.process(UnsafeRawBufferPointer(rebasing: buf[0..<n]), finish: false) { piece throws(StoreError) in
                    hasher.update(bufferPointer: piece)
                    do throws(StoreError) { try sink(piece) } catch {
                        sinkError = error
                        throw error
                    }
                }
            } catch {
                if let sinkError { throw sinkError }
                throw StoreError("blob \(sha256.prefix(12)) at \(src) is corrupt (\(error.message)); run `repro fsck`")
            }
        }
        guard ended else { throw StoreError("blob \(sha256.prefix(12)) at \(src) is truncated or corrupt; run `repro fsck`") }
        // Anything after the stream's end is damage too (an append, a partial overwrite).
        var extra: UInt8 = 0
        if read(input, &extra, 1) > 0 {
            throw StoreError("blob \(sha256.prefix(12)) at \(src) is corrupt (bytes follow its compressed data); run `repro fsck`")
        }
        guard Hashing.hex(hasher.finalize()) == sha256 else {
            throw StoreError("blob \(sha256.prefix(12)) at \(src) is corrupt (its content no longer matches its hash); run `repro fsck`")
        }
    }
}

extension Store {
    /// How many blobs the database knows of.
    func blobCount() throws(StoreError) -> Int {
        Int(try db.prepare("SELECT count(*) FROM blobs").query { $0.int(0) }.first ?? 0)
    }
}
