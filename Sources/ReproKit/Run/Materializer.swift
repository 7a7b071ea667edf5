import Foundation
import ReproSupport

/// Decides whether an output already in place needs writing again.
enum Materializer {
    /// A link is never current (it is replaced, not written through).
    static func isCurrent(_ path: String, sha256: String, size: Int64) -> Bool {
        var st = stat()
        guard lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG, Int64(st.st_size) == size else { return false }
        return (try? Hashing.sha256OfFile(atPath: path).hash) == sha256
    }
}
