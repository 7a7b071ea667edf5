import Foundation

/// An exclusive `flock` on a file. The kernel releases it when the process dies, so a crashed
/// repro can never hold a lock forever.
package final class FileLock {
    private let fd: Int32
    package let path: String

    public init(path: String) throws(StoreError) {
        self.path = path
        fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreError("cannot open lock file \(path): \(FileIO.errnoText())") }
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }

    /// Takes the lock if it is free; false if another process holds it.
    package func tryLock() -> Bool {
        flock(fd, LOCK_EX | LOCK_NB) == 0
    }

    /// Waits for the lock (exclusive, or shared with other shared holders).
    package func lock(shared: Bool = false) throws(StoreError) {
        while flock(fd, shared ? LOCK_SH : LOCK_EX) != 0 {
            if errno == EINTR { continue }
            throw StoreError("cannot lock \(path): \(FileIO.errnoText())")
        }
    }

    package func unlock() { flock(fd, LOCK_UN) }
}
