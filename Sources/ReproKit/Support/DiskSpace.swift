import Foundation

/// What to say when the disk holding the store is full: how much is free, what repro itself
/// left that can go, and which command frees it (a full disk otherwise made every command fail
/// with SQLite's "database or disk is full" and nothing named a folder).
enum DiskSpace {
    /// Free bytes for an unprivileged writer on the file system holding `path`, or nil.
    static func free(_ path: String) -> Int64? {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return nil }
        return Int64(s.f_bavail) * Int64(s.f_frsize)
    }

    /// Bytes under `path` (links not followed), walking at most `limit` entries.
    static func size(_ path: String, limit: Int = 200_000) -> Int64 {
        var total: Int64 = 0
        var seen = 0
        func walk(_ p: String) {
            var st = stat()
            guard seen < limit, lstat(p, &st) == 0 else { return }
            seen += 1
            total += Int64(st.st_blocks) * 512
            if st.st_mode & S_IFMT == S_IFDIR { for n in FileIO.directoryNames(p) ?? [] { walk(p + "/" + n) } }
        }
        walk(path)
        return total
    }

    static func bytes(_ n: Int64) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var v = Double(n)
        var i = 0
        while v >= 1024 && i < units.count - 1 {
            v /= 1024
            i += 1
        }
        return i == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[i])
    }

    /// The advice for a store at `storeRoot` whose disk is full.
    static func advice(storeRoot: String) -> String {
        let free = DiskSpace.free(storeRoot).map(bytes) ?? "?"
        let tmp = size(storeRoot + "/tmp")
        return "the disk holding \(storeRoot) is full (\(free) free). `repro cache gc` works on a full disk: it first removes "
            + "what killed or failed runs left in \(storeRoot)/tmp (\(bytes(tmp)) now), then blobs nothing refers to; "
            + "results/ folders can also go (every result stays in the store). Then run again"
    }

    /// Whether an error code is a full disk: ENOSPC or EDQUOT, or SQLite's SQLITE_FULL.
    static func isFull(errno e: Int32) -> Bool { e == ENOSPC || e == EDQUOT }
    static func isFull(sqlite rc: Int32) -> Bool { rc & 0xFF == 13 }
}
