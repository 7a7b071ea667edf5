import Foundation

/// What to say when the disk holding the store is full: how much is free, what repro itself
/// left that can go, and which command frees it (a full disk otherwise made every command fail
/// with SQLite's "database or disk is full" and nothing named a folder).
package enum DiskSpace {
    /// Free bytes for an unprivileged writer on the file system holding `path`, or nil.
    static func free(_ path: String) -> Int64? {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return nil }
        return Int64(s.f_bavail) * Int64(s.f_frsize)
    }

    /// Bytes under `path` (links not followed), walking at most `limit` entries.
    package static func size(_ path: String, limit: Int = 200_000) -> Int64 {
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


    /// The advice for a store at `storeRoot` whose disk is full.
    package static func advice(storeRoot: String) -> String {
        let free = DiskSpace.free(storeRoot).map(ByteText.format) ?? "?"
        let tmp = size(storeRoot + "/tmp")
        return "the disk holding \(storeRoot) is full (\(free) free). `repro cache gc` works on a full disk: it first removes "
            + "what killed or failed runs left in \(storeRoot)/tmp (\(ByteText.format(tmp)) now), then blobs nothing refers to; "
            + "results/ folders can also go (every result stays in the store). Then run again"
    }
}
