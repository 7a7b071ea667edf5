import CLibGit2
import Foundation

extension GitRepository {
    /// Files under `paths` that differ from HEAD: staged or unstaged changes to tracked files,
    /// and untracked files git does not ignore. Submodules that moved or have changes count too.
    public func dirtyFiles(under paths: [String]) throws(GitError) -> [String] {
        var opts = git_status_options()
        try gitCheck(git_status_options_init(&opts, UInt32(GIT_STATUS_OPTIONS_VERSION)), "git_status_options_init")
        opts.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR
        opts.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED.rawValue | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS.rawValue
            | GIT_STATUS_OPT_DISABLE_PATHSPEC_MATCH.rawValue
        let specs = paths.contains(".") ? [] : paths
        let array = CStringArray(specs)
        return try array.withStrArray { (pathspec) throws(GitError) -> [String] in
            opts.pathspec = pathspec
            var list: OpaquePointer?
            try gitCheck(git_status_list_new(&list, handle, &opts), "git_status_list_new")
            defer { git_status_list_free(list) }
            var out: [String] = []
            for i in 0..<git_status_list_entrycount(list) {
                guard let e = git_status_byindex(list, i)?.pointee else { continue }
                if e.status == GIT_STATUS_CURRENT || e.status.rawValue & GIT_STATUS_IGNORED.rawValue != 0 { continue }
                let delta = e.index_to_workdir ?? e.head_to_index
                guard let d = delta?.pointee else { continue }
                let p = d.new_file.path ?? d.old_file.path
                if let p { out.append(String(cString: p)) }
            }
            return Array(Set(out)).sorted()
        }
    }

    /// The uncommitted changes under `paths` as a git patch, untracked files included (with
    /// their content), binary files as git binary patches.
    public func patch(under paths: [String], against commit: GitCommit) throws(GitError) -> [UInt8] {
        let tree = try commit.tree()
        var opts = git_diff_options()
        try gitCheck(git_diff_options_init(&opts, UInt32(GIT_DIFF_OPTIONS_VERSION)), "git_diff_options_init")
        opts.flags = GIT_DIFF_INCLUDE_UNTRACKED.rawValue | GIT_DIFF_RECURSE_UNTRACKED_DIRS.rawValue
            | GIT_DIFF_SHOW_UNTRACKED_CONTENT.rawValue | GIT_DIFF_SHOW_BINARY.rawValue
            | GIT_DIFF_DISABLE_PATHSPEC_MATCH.rawValue
        let specs = paths.contains(".") ? [] : paths
        let array = CStringArray(specs)
        return try array.withStrArray { (pathspec) throws(GitError) -> [UInt8] in
            opts.pathspec = pathspec
            var diff: OpaquePointer?
            try gitCheck(
                git_diff_tree_to_workdir_with_index(&diff, handle, tree.handle, &opts),
                "git_diff_tree_to_workdir_with_index")
            defer { git_diff_free(diff) }
            var buf = git_buf()
            defer { git_buf_dispose(&buf) }
            try gitCheck(git_diff_to_buf(&buf, diff, GIT_DIFF_FORMAT_PATCH), "git_diff_to_buf")
            guard let ptr = buf.ptr else { return [] }
            return Array(UnsafeRawBufferPointer(start: ptr, count: buf.size))
        }
    }

    /// Submodules whose path lies under one of `paths`, with the commit HEAD records for them.
    public func submodules(under paths: [String]) -> [(path: String, commit: String)] {
        final class Box { var items: [(String, String)] = [] }
        let box = Box()
        let callback: git_submodule_cb = { sm, name, payload in
            guard let sm, let payload, let p = git_submodule_path(sm) else { return 0 }
            let box = Unmanaged<Box>.fromOpaque(payload).takeUnretainedValue()
            box.items.append((String(cString: p), oidHex(git_submodule_head_id(sm))))
            return 0
        }
        let rc = git_submodule_foreach(handle, callback, Unmanaged.passUnretained(box).toOpaque())
        guard rc == 0 else { return [] }
        return box.items
            .filter { item in paths.contains { $0 == "." || item.0 == $0 || item.0.hasPrefix($0 + "/") } }
            .map { (path: $0.0, commit: $0.1) }
            .sorted { $0.path < $1.path }
    }
}
