import Foundation

/// File times under one name on every platform: Linux calls them `st_mtim` and `st_ctim`,
/// Darwin `st_mtimespec` and `st_ctimespec`.
extension stat {
    var modified: timespec {
        #if os(Linux)
            st_mtim
        #else
            st_mtimespec
        #endif
    }

    var changed: timespec {
        #if os(Linux)
            st_ctim
        #else
            st_ctimespec
        #endif
    }
}
