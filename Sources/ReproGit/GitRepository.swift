import CGitFastInit
import CLibGit2
import Foundation
import ReproSupport

/// libgit2 must be initialized once per process; a global `let` runs its initializer once.
/// Touching CGitFastInit first keeps its CA-loader override linked in.
private let libgit2Initialized: Int32 = {
    _ = repro_git_fast_init_linked()
    return git_libgit2_init()
}()

/// A failed libgit2 call, naming the C function and libgit2's own message.
package struct GitError: ReproError {
    package let function: String
    package let code: Int32
    package let message: String
    package var exitCode: Int32 { 2 }
    package var description: String { "git: \(function) failed: \(message) (libgit2 code \(code))" }
}

/// Checks a libgit2 return code, reading `git_error_last()` at once (it is thread-local and
/// overwritten by the next call).
@inline(__always)
func gitCheck(_ rc: Int32, _ function: String) throws(GitError) {
    guard rc >= 0 else {
        let msg = git_error_last().flatMap { $0.pointee.message.map { String(cString: $0) } } ?? "unknown error"
        throw GitError(function: function, code: rc, message: msg)
    }
}

/// Owns a `git_repository*` and frees it in deinit. Not Sendable: use from one task and hand out
/// value types.
public final class GitRepository {
    let handle: OpaquePointer
    /// The work tree root, without a trailing slash.
    package let workdir: String
    /// The git directory (`.git`, or the worktree's own git dir).
    let gitDir: String
    /// The common git directory (shared by linked worktrees).
    package let commonDir: String

    /// Opens the repository containing `path`, searching upwards like `git` does.
    package convenience init(discoveringFrom path: String) throws(EnvironmentError) {
        _ = libgit2Initialized
        var repo: OpaquePointer?
        let rc = git_repository_open_ext(&repo, path, 0, nil)
        guard rc == 0, let repo else {
            if rc == GIT_ENOTFOUND.rawValue {
                throw EnvironmentError(
                    "\(path) is not inside a git repository. repro ties every run to a commit: run "
                        + "`git init && git add -A && git commit -m 'initial'` in your project first.")
            }
            let msg = git_error_last().flatMap { $0.pointee.message.map { String(cString: $0) } } ?? "unknown error"
            throw EnvironmentError("cannot open the git repository at \(path): \(msg)")
        }
        guard git_repository_is_bare(repo) == 0, git_repository_workdir(repo) != nil else {
            git_repository_free(repo)
            throw EnvironmentError("\(path) is a bare git repository; run repro in a checkout with a work tree")
        }
        self.init(owning: repo)
    }

    /// Takes ownership of an open, non-bare repository (a submodule's, say).
    init(owning repo: OpaquePointer) {
        handle = repo
        var w = git_repository_workdir(repo).map { String(cString: $0) } ?? ""
        while w.count > 1 && w.hasSuffix("/") { w.removeLast() }
        workdir = w
        var g = String(cString: git_repository_path(repo))
        while g.count > 1 && g.hasSuffix("/") { g.removeLast() }
        gitDir = g
        var c = git_repository_commondir(repo).map { String(cString: $0) } ?? g
        while c.count > 1 && c.hasSuffix("/") { c.removeLast() }
        commonDir = c
    }

    deinit { git_repository_free(handle) }

    /// The commit HEAD points to. Throws with advice when the repository has no commit yet.
    package func headCommit() throws(EnvironmentError) -> GitCommit {
        var ref: OpaquePointer?
        let rc = git_repository_head(&ref, handle)
        if rc == GIT_EUNBORNBRANCH.rawValue || rc == GIT_ENOTFOUND.rawValue {
            throw EnvironmentError(
                "the git repository at \(workdir) has no commit yet. repro records the commit each run used: "
                    + "commit your code first (`git add -A && git commit -m 'initial'`).")
        }
        do {
            try gitCheck(rc, "git_repository_head")
        } catch {
            throw EnvironmentError(error.description)
        }
        defer { git_reference_free(ref) }
        var obj: OpaquePointer?
        do {
            try gitCheck(git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT), "git_reference_peel")
        } catch {
            throw EnvironmentError("HEAD does not point to a commit: \(error.description)")
        }
        guard let obj else { throw EnvironmentError("HEAD does not point to a commit") }
        return GitCommit(owning: obj, repo: self)
    }

    /// The commit HEAD points to, for internal use where a libgit2 error is the right report.
    package func headCommitGit() throws(GitError) -> GitCommit {
        var ref: OpaquePointer?
        try gitCheck(git_repository_head(&ref, handle), "git_repository_head(\(workdir))")
        defer { git_reference_free(ref) }
        var obj: OpaquePointer?
        try gitCheck(git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT), "git_reference_peel(\(workdir))")
        guard let obj else { throw GitError(function: "git_reference_peel", code: -1, message: "HEAD is not a commit") }
        return GitCommit(owning: obj, repo: self)
    }

    /// Looks up a commit by id; nil if it is not in the object database.
    package func commit(id: String) -> GitCommit? {
        var oid = git_oid()
        guard git_oid_fromstr(&oid, id) == 0 else { return nil }
        var commit: OpaquePointer?
        guard git_commit_lookup(&commit, handle, &oid) == 0, let commit else { return nil }
        return GitCommit(owning: commit, repo: self)
    }

    /// Reads a value from git config (repository, global and system levels).
    package func configString(_ name: String) -> String? {
        var cfg: OpaquePointer?
        guard git_repository_config_snapshot(&cfg, handle) == 0, let cfg else { return nil }
        defer { git_config_free(cfg) }
        var buf = git_buf()
        defer { git_buf_dispose(&buf) }
        guard git_config_get_string_buf(&buf, cfg, name) == 0, let p = buf.ptr else { return nil }
        return String(cString: p)
    }
}

/// Owns a `git_commit*`. Keeps its repository alive.
public final class GitCommit {
    let handle: OpaquePointer
    let repo: GitRepository

    init(owning handle: OpaquePointer, repo: GitRepository) {
        self.handle = handle
        self.repo = repo
    }

    deinit { git_commit_free(handle) }

    package var id: String { oidHex(git_commit_id(handle)) }
    package var summary: String { git_commit_summary(handle).map { String(cString: $0) } ?? "" }
    var authorName: String { git_commit_author(handle).flatMap { $0.pointee.name.map { String(cString: $0) } } ?? "" }
    var authorEmail: String { git_commit_author(handle).flatMap { $0.pointee.email.map { String(cString: $0) } } ?? "" }
    /// Seconds since the epoch.
    package var time: Int64 { git_commit_time(handle) }

    /// The root tree.
    package func tree() throws(GitError) -> GitTree {
        var tree: OpaquePointer?
        try gitCheck(git_commit_tree(&tree, handle), "git_commit_tree")
        guard let tree else { throw GitError(function: "git_commit_tree", code: -1, message: "no tree") }
        return GitTree(owning: tree, repo: repo)
    }
}

/// Owns a `git_tree*`.
package final class GitTree {
    let handle: OpaquePointer
    let repo: GitRepository

    init(owning handle: OpaquePointer, repo: GitRepository) {
        self.handle = handle
        self.repo = repo
    }

    deinit { git_tree_free(handle) }

    var id: String { oidHex(git_tree_id(handle)) }

    /// The id and kind of the entry at a repo-relative path, or nil if there is none (a
    /// symlink is a "blob" here: `resolve` follows it).
    package func entry(atPath path: String) throws(GitError) -> (id: String, kind: String)? {
        if path == "." { return (id, "tree") }
        guard let e = try linkAwareEntry(atPath: path) else { return nil }
        return (e.id, e.linkTarget == nil ? e.kind : "blob")
    }

    /// "tree", "blob", or "commit" (a submodule: the id is its commit).
    static func kindName(_ entry: OpaquePointer) -> String {
        switch git_tree_entry_type(entry) {
        case GIT_OBJECT_TREE: return "tree"
        case GIT_OBJECT_BLOB: return "blob"
        case GIT_OBJECT_COMMIT: return "commit"
        default: return "other"
        }
    }
}

/// 40 lowercase hex characters of an object id (`git_oid_fmt` writes no NUL).
func oidHex(_ oid: UnsafePointer<git_oid>?) -> String {
    guard let oid else { return "" }
    var buf = [CChar](repeating: 0, count: 41)
    git_oid_fmt(&buf, oid)
    buf[40] = 0
    return String(cString: buf)
}

/// A `git_strarray` of C strings that frees them in deinit (for pathspecs).
final class CStringArray {
    private var pointers: [UnsafeMutablePointer<CChar>?]
    init(_ strings: [String]) { pointers = strings.map { strdup($0) } }
    deinit { pointers.forEach { free($0) } }

    func withStrArray<T>(_ body: (git_strarray) throws(GitError) -> T) throws(GitError) -> T {
        let count = pointers.count
        return try pointers.withUnsafeMutableBufferPointer { (buf) throws(GitError) -> T in
            try body(git_strarray(strings: buf.baseAddress, count: count))
        }
    }
}

extension GitRepository {
    /// The repository's own hooks folder (shared by linked worktrees), without a trailing slash.
    package func hooksDirectory() throws(EnvironmentError) -> String {
        var buf = git_buf()
        defer { git_buf_dispose(&buf) }
        let rc = git_repository_item_path(&buf, handle, GIT_REPOSITORY_ITEM_HOOKS)
        guard rc == 0, let ptr = buf.ptr else {
            let msg = git_error_last().flatMap { $0.pointee.message.map { String(cString: $0) } } ?? "unknown error"
            throw EnvironmentError("cannot find the hooks folder of the repository at \(workdir): git_repository_item_path failed: \(msg)")
        }
        var p = String(cString: ptr)
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        return p
    }

    /// True while a rebase, merge, cherry-pick, revert or bisect is under way.
    package var operationInProgress: Bool {
        git_repository_state(handle) != Int32(GIT_REPOSITORY_STATE_NONE.rawValue)
    }
}

/// What audit shows about a commit.
package struct CommitInfo: Sendable {
    package var id: String
    /// False when the commit object is not in this repository (history rewritten, gc'd, or
    /// the store was copied from another clone).
    package var present: Bool
    /// False when no branch or tag reaches it any more.
    package var reachable: Bool
    package var summary: String = ""
    package var author: String = ""
    package var email: String = ""
    /// Seconds since the epoch.
    package var time: Int64 = 0

    package var json: JSONValue {
        [
            "id": .string(id), "present": .bool(present), "reachable": .bool(reachable), "summary": .string(summary),
            "author": .string(author), "email": .string(email),
            "date": present ? .string(Clock.iso8601(Double(time))) : .null,
        ]
    }

    public init(
        id: String,
        present: Bool,
        reachable: Bool,
        summary: String = "",
        author: String = "",
        email: String = "",
        time: Int64 = 0
    ) {
        self.id = id
        self.present = present
        self.reachable = reachable
        self.summary = summary
        self.author = author
        self.email = email
        self.time = time
    }
}

extension GitRepository {
    /// Reads a commit's subject, author and date, and whether any branch or tag still reaches it.
    package func commitInfo(_ id: String) -> CommitInfo {
        guard let c = commit(id: id) else { return CommitInfo(id: id, present: false, reachable: false) }
        var info = CommitInfo(
            id: id, present: true, reachable: false, summary: c.summary, author: c.authorName, email: c.authorEmail, time: c.time)
        var tips: [git_oid] = []
        var iter: OpaquePointer?
        if git_reference_iterator_new(&iter, handle) == 0 {
            defer { git_reference_iterator_free(iter) }
            var ref: OpaquePointer?
            while git_reference_next(&ref, iter) == 0 {
                var peeled: OpaquePointer?
                if git_reference_peel(&peeled, ref, GIT_OBJECT_COMMIT) == 0, let peeled {
                    tips.append(git_object_id(peeled).pointee)
                    git_object_free(peeled)
                }
                git_reference_free(ref)
            }
        }
        var target = git_commit_id(c.handle).pointee
        info.reachable = tips.contains { var t = $0; return git_oid_equal(&t, &target) != 0 }
            || git_graph_reachable_from_any(handle, &target, &tips, tips.count) == 1
        return info
    }
}
