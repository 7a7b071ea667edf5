import CLibGit2
import Foundation
import ReproSupport

extension GitRepository {
    /// Writes a commit's whole tree as a tar archive (what a machine that shares no disk with
    /// this one checks out), read through libgit2 from the object database, never the work
    /// tree. Returns the tree id (the archive's name in staging) and the submodule paths the
    /// archive cannot hold (a gitlink names a commit of another repository).
    package func archive(commit id: String, to path: String) throws(ReproErrorBox) -> (treeId: String, submodules: [String]) {
        try boxingErrors {
            guard let commit = self.commit(id: id) else {
                throw GitError(function: "git_commit_lookup", code: -3, message: "commit \(id) is not in \(workdir)")
            }
            let tree = try commit.tree()
            final class Box {
                var entries: [(path: String, id: git_oid, mode: git_filemode_t)] = []
            }
            let box = Box()
            let callback: git_treewalk_cb = { root, entry, payload in
                guard let entry, let payload, let name = git_tree_entry_name(entry), let oid = git_tree_entry_id(entry) else { return 0 }
                let mode = git_tree_entry_filemode(entry)
                guard mode != GIT_FILEMODE_TREE else { return 0 }
                let b = Unmanaged<Box>.fromOpaque(payload).takeUnretainedValue()
                b.entries.append(((root.map { String(cString: $0) } ?? "") + String(cString: name), oid.pointee, mode))
                return 0
            }
            try gitCheck(git_tree_walk(tree.handle, GIT_TREEWALK_PRE, callback, Unmanaged.passUnretained(box).toOpaque()), "git_tree_walk")
            let writer = try Tar.Writer(path: path)
            var submodules: [String] = []
            for var e in box.entries {
                switch e.mode {
                case GIT_FILEMODE_COMMIT:
                    submodules.append(e.path)
                case GIT_FILEMODE_LINK:
                    try writer.add(.symlink(path: e.path, target: try blobText(&e.id)))
                default:
                    let bytes = try blobBytes(&e.id)
                    try writer.add(
                        .file(path: e.path, executable: e.mode == GIT_FILEMODE_BLOB_EXECUTABLE, size: Int64(bytes.count), source: .bytes(bytes)))
                }
            }
            try writer.finish()
            return (tree.id, submodules)
        }
    }

    /// A blob's bytes.
    func blobBytes(_ oid: inout git_oid) throws(GitError) -> [UInt8] {
        var blob: OpaquePointer?
        try gitCheck(git_blob_lookup(&blob, handle, &oid), "git_blob_lookup")
        defer { git_blob_free(blob) }
        let size = Int(git_blob_rawsize(blob))
        guard let raw = git_blob_rawcontent(blob) else { return [] }
        return Array(UnsafeRawBufferPointer(start: raw, count: size))
    }
}
