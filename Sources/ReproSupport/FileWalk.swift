import Foundation

/// Walks a folder of inputs (or code outside the repository) the way a program reading it
/// would: symlinks are followed (to files anywhere, hashed by content), loops are cut, and
/// anything that is not a regular file or folder (a FIFO, socket or device) is reported, since
/// reading one can block forever or never end.
package enum FileWalk {
    package struct Found {
        /// Regular files, relative to the root, sorted.
        package var files: [String] = []
        /// Entries that are neither regular files nor folders, relative to the root, with what they are.
        package var special: [(path: String, kind: String)] = []
        /// Symlinks that lead nowhere.
        package var dangling: [String] = []
    }

    package static func kindName(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFIFO: return "a FIFO (named pipe)"
        case S_IFSOCK: return "a socket"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFDIR: return "a folder"
        case S_IFREG: return "a regular file"
        default: return "not a regular file"
        }
    }

    package static func walk(_ root: String) -> Found {
        var found = Found()
        // Folders on the current path, by (device, inode): a link back up is a loop.
        var onPath = Set<[UInt64]>()
        func visit(_ rel: String) {
            let dir = rel.isEmpty ? root : root + "/" + rel
            var dst = stat()
            guard stat(dir, &dst) == 0 else { return }
            let id = [UInt64(dst.st_dev), UInt64(dst.st_ino)]
            guard onPath.insert(id).inserted else { return }
            defer { onPath.remove(id) }
            guard let names = FileIO.directoryNames(dir) else { return }
            for name in names.sorted() {
                let childRel = rel.isEmpty ? name : rel + "/" + name
                var st = stat()
                guard stat(root + "/" + childRel, &st) == 0 else {
                    found.dangling.append(childRel)
                    continue
                }
                switch st.st_mode & S_IFMT {
                case S_IFDIR: visit(childRel)
                case S_IFREG: found.files.append(childRel)
                default: found.special.append((childRel, kindName(st.st_mode)))
                }
            }
        }
        visit("")
        found.files.sort()
        return found
    }
}
