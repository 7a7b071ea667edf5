import Foundation

/// POSIX tar (ustar, with pax records for long names and large sizes): how code and outputs
/// travel through object storage. Plain tar, so a user can inspect any staged archive with
/// `tar tf`. The reader extracts safely: no absolute paths, no `..`, no writing through a
/// symlink, links created last.
package enum Tar {
    package enum Entry {
        case file(path: String, executable: Bool, size: Int64, source: FileSource)
        case symlink(path: String, target: String)
    }

    /// Where a file entry's bytes come from.
    package enum FileSource {
        case bytes([UInt8])
        case path(String)
    }

    /// Streams entries into a file.
    package final class Writer {
        let fd: Int32
        let path: String

        public init(path: String) throws(StoreError) {
            self.path = path
            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw StoreError("cannot create \(path): \(FileIO.errnoText())") }
        }

        deinit { close(fd) }

        package func add(_ entry: Entry) throws(StoreError) {
            switch entry {
            case .file(let p, let exec, let size, let source):
                try header(path: p, type: "0", mode: exec ? 0o755 : 0o644, size: size, link: "")
                switch source {
                case .bytes(let b): try FileIO.writeAll(fd, b, path: path)
                case .path(let src): try copy(from: src, size: size)
                }
                let pad = Int((512 - size % 512) % 512)
                if pad > 0 { try FileIO.writeAll(fd, [UInt8](repeating: 0, count: pad), path: path) }
            case .symlink(let p, let target):
                try header(path: p, type: "2", mode: 0o777, size: 0, link: target)
            }
        }

        /// Two zero blocks end the archive.
        package func finish() throws(StoreError) {
            try FileIO.writeAll(fd, [UInt8](repeating: 0, count: 1024), path: path)
        }

        private func copy(from src: String, size: Int64) throws(StoreError) {
            let inFD = open(src, O_RDONLY | O_CLOEXEC)
            guard inFD >= 0 else { throw StoreError("cannot read \(src): \(FileIO.errnoText())") }
            defer { close(inFD) }
            var left = size
            var buf = [UInt8](repeating: 0, count: 1 << 20)
            while left > 0 {
                let want = Int(min(Int64(buf.count), left))
                let r = buf.withUnsafeMutableBytes { read(inFD, $0.baseAddress, want) }
                guard r > 0 else { throw StoreError("\(src) changed while it was archived (shorter than \(size) bytes)") }
                try FileIO.writeAll(fd, Array(buf[0..<r]), path: path)
                left -= Int64(r)
            }
        }

        private func header(path p: String, type: Character, mode: Int, size: Int64, link: String) throws(StoreError) {
            var pax = ""
            if p.utf8.count > 100 { pax += Tar.paxRecord("path", p) }
            if link.utf8.count > 100 { pax += Tar.paxRecord("linkpath", link) }
            if size > 0o77777777777 { pax += Tar.paxRecord("size", String(size)) }
            if !pax.isEmpty {
                let body = Array(pax.utf8)
                try FileIO.writeAll(fd, Tar.block(name: "PaxHeaders/x", type: "x", mode: 0o644, size: Int64(body.count), link: ""), path: path)
                try FileIO.writeAll(fd, body + [UInt8](repeating: 0, count: (512 - body.count % 512) % 512), path: path)
            }
            try FileIO.writeAll(fd, Tar.block(name: p, type: type, mode: mode, size: size, link: link), path: path)
        }
    }

    static func paxRecord(_ key: String, _ value: String) -> String {
        // The length counts itself: find the fixed point.
        let rest = " \(key)=\(value)\n".utf8.count
        var n = rest + 1
        while String(n).count + rest != n { n = String(n).count + rest }
        return "\(n) \(key)=\(value)\n"
    }

    static func block(name: String, type: Character, mode: Int, size: Int64, link: String) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 512)
        func put(_ s: String, _ at: Int, _ len: Int) {
            for (i, c) in s.utf8.prefix(len).enumerated() { b[at + i] = c }
        }
        func octal(_ v: Int64, _ at: Int, _ len: Int) {
            let s = String(min(v, (1 << (3 * Int64(len - 1))) - 1), radix: 8)
            put(String(repeating: "0", count: max(0, len - 1 - s.count)) + s, at, len - 1)
        }
        put(name, 0, 100)
        octal(Int64(mode), 100, 8)
        octal(0, 108, 8)
        octal(0, 116, 8)
        octal(size > 0o77777777777 ? 0 : size, 124, 12)
        octal(0, 136, 12)  // mtime 0: the same tree gives the same archive bytes
        b[156] = type.asciiValue ?? UInt8(ascii: "0")
        put(link, 157, 100)
        put("ustar", 257, 6)
        put("00", 263, 2)
        for i in 148..<156 { b[i] = UInt8(ascii: " ") }
        let sum = b.reduce(0) { $0 + Int($1) }
        put(String(repeating: "0", count: 6 - String(sum, radix: 8).count) + String(sum, radix: 8), 148, 6)
        b[154] = 0
        b[155] = UInt8(ascii: " ")
        return b
    }

    package struct Extracted: Sendable {
        package var files: [String] = []
        package var links: [String] = []
    }

    /// Extracts an archive into `root` (which must exist). `fileLimit` bounds the entry count.
    @discardableResult
    package static func extract(_ archive: String, into root: String, fileLimit: Int = 1_000_000) throws(StoreError) -> Extracted {
        let fd = open(archive, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError("cannot read \(archive): \(FileIO.errnoText())") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw StoreError("cannot read \(archive): \(FileIO.errnoText())") }
        let archiveSize = Int64(st.st_size)
        var out = Extracted()
        var pendingLinks: [(String, String)] = []
        var pax: [String: String] = [:]
        var offset: Int64 = 0
        func readExactly(_ n: Int) throws(StoreError) -> [UInt8] {
            var buf = [UInt8](repeating: 0, count: n)
            var got = 0
            while got < n {
                let r = buf.withUnsafeMutableBytes { b -> Int in
                    guard let base = b.baseAddress else { return -1 }
                    return pread(fd, base + got, n - got, off_t(offset) + off_t(got))
                }
                guard r > 0 else { throw StoreError("\(archive) is truncated (at byte \(offset + Int64(got))); the archive is damaged") }
                got += r
            }
            offset += Int64(n)
            return buf
        }
        while true {
            let h = try readExactly(512)
            if h.allSatisfy({ $0 == 0 }) { break }
            func field(_ at: Int, _ len: Int) -> String {
                let slice = h[at..<(at + len)]
                return String(decoding: slice.prefix { $0 != 0 }, as: UTF8.self)
            }
            let stored = Int(field(148, 8).trimmingCharacters(in: CharacterSet(charactersIn: " \0")), radix: 8) ?? -1
            var check = h
            for i in 148..<156 { check[i] = UInt8(ascii: " ") }
            guard stored == check.reduce(0, { $0 + Int($1) }) else {
                throw StoreError("\(archive): bad header checksum at byte \(offset - 512); the archive is damaged")
            }
            let type = Character(Unicode.Scalar(h[156]))
            var name = field(0, 100)
            let prefix = field(345, 155)
            if !prefix.isEmpty { name = prefix + "/" + name }
            if let p = pax["path"] { name = p }
            let sizeText = pax["size"] ?? field(124, 12).trimmingCharacters(in: CharacterSet(charactersIn: " \0"))
            // A size is checked against what the archive still holds before anything is sized
            // by it: a pax size of -1 or 2^63-1 used to trap in the padding arithmetic.
            guard let size = sizeText.isEmpty ? 0 : Int64(sizeText, radix: pax["size"] == nil ? 8 : 10), size >= 0,
                size <= archiveSize - offset
            else {
                throw StoreError(
                    "\(archive): entry '\(name)' claims a size of \(sizeText) bytes, but the archive holds \(max(0, archiveSize - offset)) more; the archive is damaged or forged")
            }
            let link = pax["linkpath"] ?? field(157, 100)
            let padded = min(size + (512 - size % 512) % 512, archiveSize - offset)
            if type == "x" || type == "g" {
                guard size <= paxLimit else {
                    throw StoreError("\(archive): a pax header of \(size) bytes (more than \(paxLimit)) before '\(name)'; refusing it")
                }
            }
            if type == "x" {
                let body = String(decoding: try readExactly(Int(padded)).prefix(Int(size)), as: UTF8.self)
                pax = [:]
                // "LEN key=value" per line; a record that is not that shape is skipped (the
                // fuzzer found "=" before the space, which made an inverted range).
                for rec in body.split(separator: "\n") {
                    guard let sp = rec.firstIndex(of: " ") else { continue }
                    let kv = rec[rec.index(after: sp)...]
                    guard let eq = kv.firstIndex(of: "="), eq > kv.startIndex else { continue }
                    pax[String(kv[..<eq])] = String(kv[kv.index(after: eq)...])
                }
                continue
            }
            pax = [:]
            if type == "g" {
                offset += padded
                continue
            }
            let rel = try safePath(name, archive: archive)
            guard out.files.count + out.links.count < fileLimit else {
                throw StoreError("\(archive) holds more than \(fileLimit) entries; refusing to extract it")
            }
            switch type {
            case "0", "\0", "7":
                try makeParents(root, rel)
                let dest = root + "/" + rel
                let mode: mode_t = (Int(field(100, 8).trimmingCharacters(in: CharacterSet(charactersIn: " \0")), radix: 8) ?? 0o644) & 0o111 != 0
                    ? 0o755 : 0o644
                let outFD = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
                guard outFD >= 0 else { throw StoreError("cannot create \(dest): \(FileIO.errnoText())") }
                var left = size
                var ok = true
                var err: StoreError?
                while left > 0 {
                    let n = Int(min(left, 1 << 20))
                    do {
                        try FileIO.writeAll(outFD, try readExactly(n), path: dest)
                    } catch {
                        err = error
                        ok = false
                        break
                    }
                    left -= Int64(n)
                }
                close(outFD)
                if let err, !ok { throw err }
                offset += padded - size
                out.files.append(rel)
            case "2":
                pendingLinks.append((rel, link))
                offset += padded
            case "5":
                try makeParents(root, rel + "/x")
                offset += padded
            default:
                throw StoreError("\(archive): entry \(rel) has type '\(type)', which repro does not extract")
            }
        }
        // Links last, so no file is ever written through one.
        for (rel, target) in pendingLinks {
            try makeParents(root, rel)
            guard symlink(target, root + "/" + rel) == 0 else { throw StoreError("cannot create link \(rel): \(FileIO.errnoText())") }
            out.links.append(rel)
        }
        return out
    }

    /// Pax headers carry a few names and numbers; more than this is not an archive repro wrote.
    static let paxLimit: Int64 = 1 << 20

    package static func safePath(_ name: String, archive: String) throws(StoreError) -> String {
        let parts = name.split(separator: "/").filter { $0 != "." }
        guard !name.hasPrefix("/"), !parts.isEmpty, !parts.contains("..") else {
            throw StoreError("\(archive): entry '\(name)' would land outside the extraction folder; refusing it")
        }
        return parts.joined(separator: "/")
    }

    package static func makeParents(_ root: String, _ rel: String) throws(StoreError) {
        var dir = root
        for part in rel.split(separator: "/").dropLast() {
            dir += "/" + part
            if mkdir(dir, 0o755) != 0 && errno != EEXIST { throw StoreError("cannot create \(dir): \(FileIO.errnoText())") }
            var st = stat()
            guard lstat(dir, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
                throw StoreError("\(dir) is not a folder (a link or a file is in the way); refusing to extract through it")
            }
        }
    }
}
