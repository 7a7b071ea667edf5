import CReproSys
import Foundation

/// Per-key exclusive locks that a dead process cannot hold: two repro processes with the same
/// cache key do not both compute it. On Linux, one byte-range lock per key in a single file
/// (open-file-description locks); elsewhere, a flock'd file per key.
package final class KeyLocks {
    let dir: String
    #if os(Linux)
        private let fd: Int32
    #endif
    private var files: [String: FileLock] = [:]

    public init(locksDir: String) throws(StoreError) {
        dir = locksDir
        #if os(Linux)
            fd = open(locksDir + "/keys.lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw StoreError("cannot open \(locksDir)/keys.lock: \(FileIO.errnoText())") }
        #endif
    }

    deinit {
        #if os(Linux)
            close(fd)
        #endif
    }

    #if os(Linux)
        /// The byte for a key: its first 60 bits (keys are SHA-256, so distinct keys do not meet).
        static func offset(_ key: String) -> Int64 {
            Int64(UInt64(key.prefix(15), radix: 16) ?? 0)
        }
    #endif

    /// Takes the key's lock if it is free.
    package func tryLock(_ key: String) throws(StoreError) -> Bool {
        #if os(Linux)
            if repro_ofd_lock(fd, KeyLocks.offset(key), 0, 0) == 0 { return true }
            if errno == EAGAIN || errno == EACCES { return false }
            throw StoreError("cannot lock key \(key.prefix(12)) in \(dir)/keys.lock: \(FileIO.errnoText())")
        #else
            let l = try FileLock(path: dir + "/\(key).lock")
            guard l.tryLock() else { return false }
            files[key] = l
            return true
        #endif
    }

    /// Waits for the key's lock.
    package func lock(_ key: String) throws(StoreError) {
        #if os(Linux)
            while repro_ofd_lock(fd, KeyLocks.offset(key), 1, 0) != 0 {
                if errno == EINTR { continue }
                throw StoreError("cannot lock key \(key.prefix(12)) in \(dir)/keys.lock: \(FileIO.errnoText())")
            }
        #else
            let l = try FileLock(path: dir + "/\(key).lock")
            try l.lock()
            files[key] = l
        #endif
    }

    package func unlock(_ key: String) {
        #if os(Linux)
            _ = repro_ofd_lock(fd, KeyLocks.offset(key), 0, 1)
        #else
            files.removeValue(forKey: key)?.unlock()
        #endif
    }
}
