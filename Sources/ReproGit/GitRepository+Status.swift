import CLibGit2
import Foundation
import ReproSupport

extension GitRepository {
    /// Files under `paths` that differ from HEAD: staged or unstaged changes to tracked files,
    /// untracked files, and files git ignores under an explicitly listed path (not under `.`,
    /// the whole repository, where build trees and the store itself live). Python bytecode
    /// caches are not counted: Python derives them from the tracked source. Submodules that
    /// moved or have changes count too.
    package func dirtyFiles(under paths: [String]) throws(GitError) -> (all: [String], ignored: [String]) {
        var opts = git_status_options()
        try gitCheck(git_status_options_init(&opts, UInt32(GIT_STATUS_OPTIONS_VERSION)), "git_status_options_init")
        opts.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR
        let wholeRepo = paths.contains(".")
        opts.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED.rawValue | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS.rawValue
            | GIT_STATUS_OPT_DISABLE_PATHSPEC_MATCH.rawValue
        if !wholeRepo {
            opts.flags |= GIT_STATUS_OPT_INCLUDE_IGNORED.rawValue | GIT_STATUS_OPT_RECURSE_IGNORED_DIRS.rawValue
        }
        let specs = wholeRepo ? [] : paths
        let array = CStringArray(specs)
        return try array.withStrArray { (pathspec) throws(GitError) -> (all: [String], ignored: [String]) in
            opts.pathspec = pathspec
            var list: OpaquePointer?
            try gitCheck(git_status_list_new(&list, handle, &opts), "git_status_list_new")
            defer { git_status_list_free(list) }
            var out = Set<String>()
            var ignored = Set<String>()
            for i in 0..<git_status_list_entrycount(list) {
                guard let e = git_status_byindex(list, i)?.pointee else { continue }
                if e.status == GIT_STATUS_CURRENT { continue }
                let delta = e.index_to_workdir ?? e.head_to_index
                guard let d = delta?.pointee, let cp = d.new_file.path ?? d.old_file.path else { continue }
                let p = String(cString: cp)
                let fresh = e.status.rawValue & (GIT_STATUS_IGNORED.rawValue | GIT_STATUS_WT_NEW.rawValue) != 0
                // Bytecode Python wrote next to the source, ignored or not: never a change of code.
                if fresh, GitRepository.isBytecode(p) { continue }
                if e.status.rawValue & GIT_STATUS_IGNORED.rawValue != 0 { ignored.insert(p) }
                out.insert(p)
            }
            return (out.sorted(), ignored.sorted())
        }
    }

    /// A Python bytecode cache (`__pycache__/…`, `*.pyc`, `*.pyo`): derived from tracked source.
    static func isBytecode(_ path: String) -> Bool {
        path.hasSuffix(".pyc") || path.hasSuffix(".pyo") || path.split(separator: "/").contains("__pycache__")
    }

    /// A patch that adds each of `files` (work-tree paths git ignores) with its content, so
    /// their content is part of `--allow-dirty`'s patch and of the key.
    package func patchAddingFiles(_ files: [String]) throws(GitError) -> [UInt8] {
        var out: [UInt8] = []
        var opts = git_diff_options()
        try gitCheck(git_diff_options_init(&opts, UInt32(GIT_DIFF_OPTIONS_VERSION)), "git_diff_options_init")
        opts.flags = GIT_DIFF_SHOW_BINARY.rawValue
        for f in files {
            let content: [UInt8]
            do { content = try FileIO.readAll(workdir + "/" + f, limit: 256 << 20) } catch {
                throw GitError(function: "read(\(f))", code: -1, message: error.message)
            }
            var patch: OpaquePointer?
            let rc = content.withUnsafeBytes { raw in
                git_patch_from_buffers(&patch, nil, 0, nil, raw.baseAddress, raw.count, f, &opts)
            }
            try gitCheck(rc, "git_patch_from_buffers(\(f))")
            defer { git_patch_free(patch) }
            var buf = git_buf()
            defer { git_buf_dispose(&buf) }
            try gitCheck(git_patch_to_buf(&buf, patch), "git_patch_to_buf(\(f))")
            out += Array("# ignored by git: \(f)\n".utf8)
            if let ptr = buf.ptr { out += Array(UnsafeRawBufferPointer(start: ptr, count: buf.size)) }
        }
        return out
    }

    /// The uncommitted changes inside a submodule (its own patch, against its own HEAD, with
    /// untracked files), or nothing when it is clean or not checked out.
    package func submodulePatch(_ path: String) throws(GitError) -> [UInt8] {
        var sm: OpaquePointer?
        try gitCheck(git_submodule_lookup(&sm, handle, path), "git_submodule_lookup(\(path))")
        defer { git_submodule_free(sm) }
        var subRepo: OpaquePointer?
        let rc = git_submodule_open(&subRepo, sm)
        // Not checked out: nothing can differ in it. Any other failure must not pass for "clean".
        if rc == GIT_ENOTFOUND.rawValue { return [] }
        try gitCheck(rc, "git_submodule_open(\(path))")
        guard let subRepo else { return [] }
        let sub = GitRepository(owning: subRepo)
        let head = try sub.headCommitGit()
        var out = Array("# submodule \(path) at \(head.id)\n".utf8)
        out += try sub.patch(under: ["."], against: head)
        return out
    }
    /// The uncommitted changes under `paths` as a git patch, untracked files included (with
    /// their content), binary files as git binary patches.
    package func patch(under paths: [String], against commit: GitCommit) throws(GitError) -> [UInt8] {
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
            // Untracked bytecode is left out of the patch as it is out of the dirty files.
            opts.notify_cb = { _, delta, _, _ in
                guard let d = delta?.pointee, d.status == GIT_DELTA_UNTRACKED, let p = d.new_file.path else { return 0 }
                return GitRepository.isBytecode(String(cString: p)) ? 1 : 0
            }
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
    package func submodules(under paths: [String]) throws(GitError) -> [(path: String, commit: String)] {
        final class Box { var items: [(String, String)] = [] }
        let box = Box()
        let callback: git_submodule_cb = { sm, name, payload in
            guard let sm, let payload, let p = git_submodule_path(sm) else { return 0 }
            let box = Unmanaged<Box>.fromOpaque(payload).takeUnretainedValue()
            box.items.append((String(cString: p), oidHex(git_submodule_head_id(sm))))
            return 0
        }
        // A failure here must not read as "no submodules": that would be a wrong code identity.
        try gitCheck(git_submodule_foreach(handle, callback, Unmanaged.passUnretained(box).toOpaque()), "git_submodule_foreach")
        return box.items
            .filter { item in paths.contains { $0 == "." || item.0 == $0 || item.0.hasPrefix($0 + "/") } }
            .map { (path: $0.0, commit: $0.1) }
            .sorted { $0.path < $1.path }
    }
}
