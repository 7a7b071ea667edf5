import Foundation
import ReproSupport

extension Store {
    /// The SHA-256 of a file, from the stat cache when its (size, mtime, ctime, inode, device)
    /// are unchanged, as git's index does; otherwise the file is hashed again and the cache
    /// updated. A file modified within the last 2 seconds is never trusted from the cache:
    /// a write in the same timestamp tick as the hash would otherwise go unnoticed ("racy git").
    package func hashFile(atPath path: String) throws(StoreError) -> (sha256: String, size: Int64) {
        var st = stat()
        guard stat(path, &st) == 0 else { throw StoreError("cannot stat \(path): \(FileIO.errnoText())") }
        let mtime = Int64(st.modified.tv_sec) * 1_000_000_000 + Int64(st.modified.tv_nsec)
        let ctime = Int64(st.changed.tv_sec) * 1_000_000_000 + Int64(st.changed.tv_nsec)
        let size = Int64(st.st_size)
        let lookup = try db.prepare("SELECT size, mtime_ns, ctime_ns, inode, dev, sha256 FROM stat_cache WHERE path = ?")
        let cached = try lookup.query([.text(path)]) { row in
            (row.int(0), row.int(1), row.int(2), row.int(3), row.int(4), row.text(5))
        }.first
        if let c = cached, c.0 == size, c.1 == mtime, c.2 == ctime, c.3 == Int64(st.st_ino), c.4 == Int64(st.st_dev) {
            return (c.5, size)
        }
        let (hash, hashedSize) = try Hashing.sha256OfFile(atPath: path)
        let newest = max(mtime, ctime)
        let racy = Double(newest) / 1e9 > Clock.now() - 2
        if !racy && hashedSize == size {
            // Best effort: a busy store must not fail a run over a cache entry.
            try? db.prepare(
                "INSERT OR REPLACE INTO stat_cache (path, size, mtime_ns, ctime_ns, inode, dev, sha256) VALUES (?, ?, ?, ?, ?, ?, ?)"
            ).run([.text(path), .int(size), .int(mtime), .int(ctime), .int(Int64(st.st_ino)), .int(Int64(st.st_dev)), .text(hash)])
        }
        return (hash, hashedSize)
    }
}
