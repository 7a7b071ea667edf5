import Foundation
import ReproSupport
import ReproGit
import ReproStore

/// What "the code" of a run was: the commit, and for each declared code path the git object
/// it named at that commit. A commit that leaves these objects alone keeps the identity.
public struct CodeIdentity: Sendable, Equatable {
    /// A code path and the git object it names (see `RecordedCode.Entry`).
    public typealias Entry = RecordedCode.Entry
    /// A symlink at or under a code path and what its target was (see `RecordedCode.Link`).
    public typealias Link = RecordedCode.Link

    public var commit: String
    public var commitSummary: String
    public var entries: [Entry]
    public var submodules: [(path: String, commit: String)]
    public var links: [Link] = []
    /// Files under the code paths that differ from HEAD (ignored ones included, see `read`).
    public var dirtyFiles: [String]
    /// The subset of `dirtyFiles` that git ignores (their content joins the patch separately).
    public var ignoredFiles: [String] = []
    /// Submodules under the code paths with changes of their own.
    public var dirtySubmodules: [String] = []

    public static func == (a: CodeIdentity, b: CodeIdentity) -> Bool {
        a.commit == b.commit && a.entries == b.entries && a.dirtyFiles == b.dirtyFiles && a.links == b.links
            && a.submodules.map { $0.path + "@" + $0.commit } == b.submodules.map { $0.path + "@" + $0.commit }
    }

    /// The part of the identity that joins the cache key (not the commit itself). `links`
    /// appears only when there are any, so keys of code without symlinks keep their value.
    public var keyJSON: JSONValue { recorded.json }

    /// What a run record keeps of it.
    public var recorded: RecordedCode {
        RecordedCode(paths: entries, submodules: submodules.map { RecordedCode.Submodule(path: $0.path, commit: $0.commit) }, links: links)
    }

    /// Reads the identity of `paths` at HEAD. A path that is neither in HEAD nor on disk is a
    /// config error; one that exists only on disk is "absent" and counts as dirty.
    ///
    /// Symlinks are followed: inside the repository to the git object they lead to, outside it
    /// to the SHA-256 of the content there (`hashOutside`). Files git ignores under an explicitly
    /// listed code path count as dirty (Python's `__pycache__` excepted: it is derived from the
    /// tracked source); under the whole-repository default `.` only tracked and untracked files count.
    public static func read(
        repo: GitRepository, paths: [String], hashOutside: (String) throws -> String
    ) throws(ReproErrorBox) -> (CodeIdentity, GitCommit) {
        do {
            let head = try repo.headCommit()
            let tree = try head.tree()
            var entries: [Entry] = []
            var links: [Link] = []
            var absent: [String] = []
            for p in paths {
                switch try tree.resolve(p) {
                case .object(_, let id, let kind):
                    entries.append(Entry(path: p, kind: kind, id: id))
                case .outside(let target):
                    let full = target.hasPrefix("/") ? target : repo.workdir + "/" + target
                    entries.append(Entry(path: p, kind: "outside", id: try hashOutside(full)))
                case .missing:
                    guard FileManager.default.fileExists(atPath: repo.workdir + "/" + p) else {
                        throw ConfigError(
                            "code path '\(p)' is neither in commit \(head.id.prefix(12)) nor in the work tree at \(repo.workdir); "
                                + "fix `code:` in the spec or add the file")
                    }
                    entries.append(Entry(path: p, kind: "absent", id: ""))
                    absent.append(p)
                }
                for l in try tree.symlinks(under: p) where !links.contains(where: { $0.path == l.path }) {
                    let id: String
                    switch try tree.resolve(l.path) {
                    case .object(_, let oid, let kind): id = kind + ":" + oid
                    case .outside(let target):
                        let full = target.hasPrefix("/") ? target : repo.workdir + "/" + target
                        id = "outside:" + (try hashOutside(full))
                    case .missing(let to): id = "dangling:" + to
                    }
                    links.append(Link(path: l.path, target: l.target, id: id))
                }
            }
            let status = try repo.dirtyFiles(under: paths)
            var dirty = status.all
            // A code path git does not have at HEAD is never clean, even if git ignores it.
            for p in absent where !dirty.contains(where: { $0 == p || $0.hasPrefix(p + "/") }) { dirty.append(p) }
            let subs = try repo.submodules(under: paths)
            var identity = CodeIdentity(
                commit: head.id, commitSummary: head.summary, entries: entries, submodules: subs, dirtyFiles: dirty.sorted())
            identity.links = links.sorted { $0.path < $1.path }
            identity.ignoredFiles = status.ignored
            identity.dirtySubmodules = subs.map(\.path).filter { sub in dirty.contains(sub) }
            return (identity, head)
        } catch let e as ReproError {
            throw ReproErrorBox(e)
        } catch {
            throw ReproErrorBox(ExecutionError("\(error)", cause: error))
        }
    }
}
