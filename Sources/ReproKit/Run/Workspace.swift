import Foundation
import ReproSupport
import ReproGit
import ReproStore

/// The repository a command runs in and its store, opened by one set of rules for every
/// command: the store is `REPRO_STORE` when set, else `.repro/` at the repository root; it must
/// already exist (a lookup in a repository that never ran anything finds nothing); a refresh
/// owed by a git hook that found the store busy is settled on the way in.
public struct Workspace {
    /// Nil only when `REPRO_STORE` names the store and no repository was needed.
    public let repo: GitRepository?
    public let store: Store

    public static func open(from directory: String, environment: [String: String], needsRepository: Bool) throws -> Workspace {
        var repo: GitRepository?
        do {
            repo = try GitRepository(discoveringFrom: directory)
        } catch {
            let explicit = !(environment["REPRO_STORE"] ?? "").isEmpty
            if needsRepository || !explicit { throw error }
        }
        let root = Store.defaultRoot(repoRoot: repo?.workdir ?? "", environment: environment)
        guard FileManager.default.fileExists(atPath: root + "/store.sqlite") else {
            throw NotFoundError("no repro store at \(root) yet; `repro run SPEC` creates it")
        }
        let store = try Store(root: root)
        if let repo { HookRefresh.settleOwed(store: store, repo: repo) }
        return Workspace(repo: repo, store: store)
    }

    /// The repository, for commands that need one (opened with `needsRepository`).
    public func repository() throws(EnvironmentError) -> GitRepository {
        guard let repo else { throw EnvironmentError("this command needs a git repository; run it inside one") }
        return repo
    }
}
