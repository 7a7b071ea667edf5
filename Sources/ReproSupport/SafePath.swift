import Foundation

/// Relative names that come from outside (a pulled manifest, a worker's manifest, an archive)
/// and the folders they are written into: a name may only ever land inside its root.
package enum SafePath {
    /// Why `name` is not a plain relative path inside a folder, or nil when it is: no leading
    /// `/`, no empty, `.` or `..` part, no NUL or control character, at most 4,096 bytes.
    package static func problem(in name: String) -> String? {
        if name.isEmpty { return "it is empty" }
        if name.utf8.count > 4096 { return "it is longer than 4,096 bytes" }
        if name.hasPrefix("/") { return "it is an absolute path" }
        if name.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) { return "it holds a control character" }
        for part in name.split(separator: "/", omittingEmptySubsequences: false) {
            if part.isEmpty { return "it has an empty part (`//` or a trailing `/`)" }
            if part == "." || part == ".." { return "it has a `\(part)` part" }
        }
        return nil
    }

    /// Opens the folder that holds `rel` inside `root` (creating the folders between as
    /// needed), one component at a time with `O_NOFOLLOW`: a link planted anywhere on the way
    /// (`results/x/traj -> ~/.ssh`) is refused, never written through. `root` itself is created
    /// when missing. Returns the open folder and the last component; the caller closes it.
    package static func openParent(root: String, rel: String) throws(StoreError) -> (fd: Int32, leaf: String) {
        if let why = problem(in: rel) { throw StoreError("refusing to write '\(rel)' under \(root): \(why)") }
        try FileIO.makeDirectory(root)
        var fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError("cannot open \(root): \(FileIO.errnoText())") }
        let parts = rel.split(separator: "/").map(String.init)
        var walked = root
        for part in parts.dropLast() {
            walked += "/" + part
            if mkdirat(fd, part, 0o755) != 0 && errno != EEXIST {
                let msg = FileIO.errnoText()
                close(fd)
                throw StoreError("cannot create \(walked): \(msg)")
            }
            let next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let err = errno
            close(fd)
            guard next >= 0 else {
                throw StoreError(
                    err == ELOOP || err == ENOTDIR
                        ? "\(walked) is a link or a file, not a folder; refusing to write '\(rel)' through it (remove it and run again)"
                        : "cannot open \(walked): \(String(cString: strerror(err)))")
            }
            fd = next
        }
        return (fd, parts.last ?? rel)
    }
}
