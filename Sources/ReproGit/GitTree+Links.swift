import CLibGit2
import Foundation

/// Where a path leads in a commit once symlinks are followed.
package enum TreeTarget: Equatable {
    /// A git object in the tree (after following any links through it).
    case object(path: String, id: String, kind: String)
    /// A link leads out of the repository: to this absolute path, or to a path relative to the
    /// work tree root that climbs out of it.
    case outside(String)
    /// Nothing in the commit at that path (after following links).
    case missing(path: String)
}

extension GitTree {
    /// How many links one lookup may follow (the kernel's ELOOP limit).
    static let maxLinkDepth = 40

    /// Follows symlinks recorded in the commit (mode 120000 entries), in any component of
    /// `path`, the way the file system would once the commit is checked out.
    package func resolve(_ path: String) throws(GitError) -> TreeTarget {
        if path == "." { return .object(path: ".", id: id, kind: "tree") }
        var parts = path.split(separator: "/").map(String.init)
        var done: [String] = []
        var hops = 0
        while !parts.isEmpty {
            let current = (done + [parts[0]]).joined(separator: "/")
            guard let entry = try linkAwareEntry(atPath: current) else {
                return .missing(path: (done + parts).joined(separator: "/"))
            }
            parts.removeFirst()
            guard let target = entry.linkTarget else {
                done.append(current.split(separator: "/").last.map(String.init) ?? current)
                if parts.isEmpty { return .object(path: current, id: entry.id, kind: entry.kind) }
                continue
            }
            hops += 1
            guard hops <= GitTree.maxLinkDepth else {
                throw GitError(function: "resolve(\(path))", code: -1, message: "more than \(GitTree.maxLinkDepth) symlinks (a loop?)")
            }
            if target.hasPrefix("/") { return .outside(([target] + parts).joined(separator: "/")) }
            // Relative to the link's own folder; `..` may climb out of the repository.
            var resolved = done
            for piece in target.split(separator: "/") {
                if piece == "." { continue }
                if piece == ".." {
                    if resolved.isEmpty { return .outside((["..", target] + parts).joined(separator: "/")) }
                    resolved.removeLast()
                } else {
                    resolved.append(String(piece))
                }
            }
            parts = resolved + parts
            done = []
        }
        return .object(path: ".", id: id, kind: "tree")
    }

    /// Every symlink at or below `path` in this tree, with the text it points to.
    package func symlinks(under path: String) throws(GitError) -> [(path: String, target: String)] {
        final class Box {
            var found: [(path: String, id: git_oid)] = []
        }
        let box = Box()
        var subtree: OpaquePointer? = handle
        var owned: OpaquePointer?
        defer { if let owned { git_tree_free(owned) } }
        let prefix = path == "." ? "" : path + "/"
        if path != "." {
            guard let e = try linkAwareEntry(atPath: path) else { return [] }
            if let t = e.linkTarget { return [(path, t)] }
            guard e.kind == "tree" else { return [] }
            var oid = git_oid()
            guard git_oid_fromstr(&oid, e.id) == 0 else { return [] }
            try gitCheck(git_tree_lookup(&owned, repo.handle, &oid), "git_tree_lookup(\(path))")
            subtree = owned
        }
        let callback: git_treewalk_cb = { root, entry, payload in
            guard let entry, let payload else { return 0 }
            if git_tree_entry_filemode(entry) == GIT_FILEMODE_LINK, let name = git_tree_entry_name(entry), let oid = git_tree_entry_id(entry) {
                let box = Unmanaged<Box>.fromOpaque(payload).takeUnretainedValue()
                box.found.append(((root.map { String(cString: $0) } ?? "") + String(cString: name), oid.pointee))
            }
            return 0
        }
        try gitCheck(
            git_tree_walk(subtree, GIT_TREEWALK_PRE, callback, Unmanaged.passUnretained(box).toOpaque()), "git_tree_walk(\(path))")
        var out: [(path: String, target: String)] = []
        for var f in box.found {
            out.append((prefix + f.path, try repo.blobText(&f.id)))
        }
        return out
    }

    /// The entry at a path, with the link's target text when it is a symlink.
    func linkAwareEntry(atPath path: String) throws(GitError) -> (id: String, kind: String, linkTarget: String?)? {
        var entry: OpaquePointer?
        let rc = git_tree_entry_bypath(&entry, handle, path)
        if rc == GIT_ENOTFOUND.rawValue { return nil }
        try gitCheck(rc, "git_tree_entry_bypath(\(path))")
        guard let entry else { return nil }
        defer { git_tree_entry_free(entry) }
        let id = oidHex(git_tree_entry_id(entry))
        if git_tree_entry_filemode(entry) == GIT_FILEMODE_LINK, var oid = git_tree_entry_id(entry)?.pointee {
            return (id, "link", try repo.blobText(&oid))
        }
        return (id, GitTree.kindName(entry), nil)
    }
}

extension GitRepository {
    /// A blob's content as text (a symlink's target).
    func blobText(_ oid: inout git_oid) throws(GitError) -> String {
        var blob: OpaquePointer?
        try gitCheck(git_blob_lookup(&blob, handle, &oid), "git_blob_lookup")
        defer { git_blob_free(blob) }
        let size = Int(git_blob_rawsize(blob))
        guard let raw = git_blob_rawcontent(blob) else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: raw, count: size), as: UTF8.self)
    }
}
