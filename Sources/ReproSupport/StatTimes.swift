import Foundation

/// File times under one name on every platform: Linux calls them `st_mtim` and `st_ctim`,
/// Darwin `st_mtimespec` and `st_ctimespec`.
extension stat {
    package var modified: timespec {
        #if os(Linux)
            st_mtim
        #else
            st_mtimespec
        #endif
    }

    package var changed: timespec {
        #if os(Linux)
            st_ctim
        #else
            st_ctimespec
        #endif
    }
}

extension FileIO {
    /// Size, mtime and inode of a path (its content changing changes these).
    package static func statSignature(_ path: String) -> String {
        var st = stat()
        guard stat(path, &st) == 0 else { return "-" }
        return "\(st.st_size):\(st.modified.tv_sec).\(st.modified.tv_nsec):\(st.st_ino)"
    }
}
