import Foundation
import Synchronization

extension FileIO {
    private static let realPaths = Mutex<[String: String]>([:])

    /// The path with symlinks resolved (realpath), remembered per process.
    package static func realPath(_ path: String) -> String {
        if let known = realPaths.withLock({ $0[path] }) { return known }
        guard let p = realpath(path, nil) else { return path }
        let r = String(cString: p)
        free(p)
        realPaths.withLock { $0[path] = r }
        return r
    }
}
