import Foundation

/// Small POSIX file helpers that report every failure (a failed write is never a success).
package enum FileIO {
    /// Creates a folder and its parents.
    package static func makeDirectory(_ path: String) throws(StoreError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw StoreError("cannot create \(path): \(error.localizedDescription); check permissions or set REPRO_STORE")
        }
    }

    package static func errnoText() -> String { String(cString: strerror(errno)) }

    /// Writes `bytes` to a temp file beside `path`, optionally fsyncs it, and renames it over `path`.
    package static func writeAtomically(_ bytes: [UInt8], to path: String, sync: Bool = true, mode: mode_t = 0o644) throws(StoreError) {
        let tmp = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw StoreError("cannot create \(tmp): \(errnoText())") }
        do throws(StoreError) {
            try writeAll(fd, bytes, path: tmp)
            if sync && fsync(fd) != 0 { throw StoreError.posix("fsync \(tmp) failed") }
            guard close(fd) == 0 else { throw StoreError.posix("close \(tmp) failed") }
        } catch {
            close(fd)
            unlink(tmp)
            throw error
        }
        guard rename(tmp, path) == 0 else {
            let msg = errnoText()
            unlink(tmp)
            throw StoreError("cannot move \(tmp) to \(path): \(msg)")
        }
    }

    /// Writes a new file in one go (for files nobody else reads until we are done).
    package static func writeNew(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws(StoreError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw StoreError("cannot create \(path): \(errnoText())") }
        defer { close(fd) }
        try writeAll(fd, bytes, path: path)
    }

    /// Removes a file, a link or a directory tree with plain syscalls (FileManager is slow for
    /// thousands of small task directories). Links are removed, never followed: a simulation may
    /// leave `$REPRO_OUTDIR/inputs -> /home/me/data`, and only the link may go. Every directory is
    /// opened with `O_NOFOLLOW` relative to its parent's descriptor, so a directory swapped for a
    /// link while we walk is not followed either. Missing is fine.
    package static func removeTree(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            unlink(path)
            return
        }
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd >= 0 {
            removeContents(of: fd, depth: 0)
            close(fd)
        }
        rmdir(path)
    }

    /// Removes everything inside a directory, keeping the directory (a link in its place is
    /// not followed: nothing is removed then).
    package static func emptyTree(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return }
        removeContents(of: fd, depth: 0)
        close(fd)
    }

    /// Deeper than this, a tree is left (each level holds one descriptor; a hostile tree a
    /// million folders deep must not exhaust them).
    private static let maxRemoveDepth = 256

    /// Unlinks every entry of the open directory `fd`, descending into real directories only.
    private static func removeContents(of fd: Int32, depth: Int) {
        let listFd = dup(fd)
        guard listFd >= 0, let dir = fdopendir(listFd) else {
            if listFd >= 0 { close(listFd) }
            return
        }
        var names: [(String, Bool?)] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            let type = entry.pointee.d_type
            names.append((name, type == UInt8(DT_UNKNOWN) ? nil : type == UInt8(DT_DIR)))
        }
        closedir(dir)
        for (name, known) in names {
            var isDir = known ?? false
            if known == nil {
                var st = stat()
                isDir = fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
            }
            if isDir {
                if depth < maxRemoveDepth {
                    let child = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                    if child >= 0 {
                        removeContents(of: child, depth: depth + 1)
                        close(child)
                    }
                }
                // ENOTDIR: it was swapped for a link or a file since it was listed.
                if unlinkat(fd, name, AT_REMOVEDIR) != 0 && errno == ENOTDIR { unlinkat(fd, name, 0) }
            } else if unlinkat(fd, name, 0) != 0 && errno == EISDIR {
                // Swapped for a directory since it was listed: handled as one, without following.
                let child = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if child >= 0 {
                    if depth < maxRemoveDepth { removeContents(of: child, depth: depth + 1) }
                    close(child)
                }
                unlinkat(fd, name, AT_REMOVEDIR)
            }
        }
    }

    /// The names in a directory (without `.` and `..`), unsorted; nil when it cannot be read.
    /// Plain readdir: FileManager is slow for the thousands of small folders a sweep makes.
    package static func directoryNames(_ path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    package static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(StoreError) {
        var result: Result<Void, StoreError> = .success(())
        bytes.withUnsafeBytes { buf in
            result = Result { () throws(StoreError) in try writeAll(fd, buf, path: path) }
        }
        try result.get()
    }

    package static func writeAll(_ fd: Int32, _ buf: UnsafeRawBufferPointer, path: String) throws(StoreError) {
        var off = 0
        while off < buf.count {
            let n = write(fd, buf.baseAddress! + off, buf.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                throw StoreError.posix("write to \(path) failed")
            }
            off += n
        }
    }

    /// Reads a whole file, refusing one larger than `limit` bytes (checked before and while
    /// reading, so a file that grows meanwhile cannot take all memory either).
    package static func readAll(_ path: String, limit: Int = 64 << 20) throws(StoreError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError("cannot read \(path): \(errnoText())") }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) == 0, Int(st.st_size) > limit {
            throw StoreError("\(path) is \(st.st_size) bytes, more than the \(limit) this read allows")
        }
        var out = [UInt8]()
        out.reserveCapacity(max(0, Int(st.st_size)))
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw StoreError("error reading \(path): \(errnoText())")
            }
            if n == 0 { break }
            guard out.count + n <= limit else { throw StoreError("\(path) grew past the \(limit) bytes this read allows") }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }

    /// The last `maxBytes` of a file (a log's tail), without reading the rest.
    package static func readTail(_ path: String, maxBytes: Int) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return [] }
        let size = Int(st.st_size)
        let start = max(0, size - maxBytes)
        var out = [UInt8](repeating: 0, count: size - start)
        var got = 0
        while got < out.count {
            let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress.map { $0 + got }, $0.count - got, off_t(start + got)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            got += n
        }
        return Array(out.prefix(got))
    }

    package static func fsyncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

}
