import Foundation

/// What "the code" of a run was: the commit, and for each declared code path the git object
/// it named at that commit. A commit that leaves these objects alone keeps the identity.
public struct CodeIdentity: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var path: String
        /// "tree", "blob", "commit" (a submodule) or "absent" (not in HEAD yet).
        public var kind: String
        public var id: String
    }

    public var commit: String
    public var commitSummary: String
    public var entries: [Entry]
    public var submodules: [(path: String, commit: String)]
    /// Files under the code paths that differ from HEAD.
    public var dirtyFiles: [String]

    public static func == (a: CodeIdentity, b: CodeIdentity) -> Bool {
        a.commit == b.commit && a.entries == b.entries && a.dirtyFiles == b.dirtyFiles
            && a.submodules.map { $0.path + "@" + $0.commit } == b.submodules.map { $0.path + "@" + $0.commit }
    }

    /// The part of the identity that joins the cache key (not the commit itself).
    public var keyJSON: JSONValue {
        .object([
            "paths": .array(entries.map { .object(["path": .string($0.path), "kind": .string($0.kind), "id": .string($0.id)]) }),
            "submodules": .array(submodules.map { .object(["path": .string($0.path), "commit": .string($0.commit)]) }),
        ])
    }

    /// Reads the identity of `paths` at HEAD. A path that is neither in HEAD nor on disk is a
    /// config error; one that exists only on disk is "absent" and will show up as dirty.
    public static func read(repo: GitRepository, paths: [String]) throws(ReproErrorBox) -> (CodeIdentity, GitCommit) {
        do {
            let head = try repo.headCommit()
            let tree = try head.tree()
            var entries: [Entry] = []
            for p in paths {
                if let e = try tree.entry(atPath: p) {
                    entries.append(Entry(path: p, kind: e.kind, id: e.id))
                } else if FileManager.default.fileExists(atPath: repo.workdir + "/" + p) {
                    entries.append(Entry(path: p, kind: "absent", id: ""))
                } else {
                    throw ConfigError(
                        "code path '\(p)' is neither in commit \(head.id.prefix(12)) nor in the work tree at \(repo.workdir); "
                            + "fix `code:` in the spec or add the file")
                }
            }
            let dirty = try repo.dirtyFiles(under: paths)
            let subs = repo.submodules(under: paths)
            let identity = CodeIdentity(
                commit: head.id, commitSummary: head.summary, entries: entries, submodules: subs, dirtyFiles: dirty)
            return (identity, head)
        } catch let e as ReproError {
            throw ReproErrorBox(e)
        } catch {
            throw ReproErrorBox(ExecutionError("\(error)"))
        }
    }
}

/// Carries any `ReproError` through a typed `throws`, keeping its message and exit code.
public struct ReproErrorBox: ReproError {
    public let inner: any ReproError
    public init(_ inner: any ReproError) {
        if let box = inner as? ReproErrorBox { self.inner = box.inner } else { self.inner = inner }
    }
    public var exitCode: Int32 { inner.exitCode }
    public var description: String { inner.description }
}
