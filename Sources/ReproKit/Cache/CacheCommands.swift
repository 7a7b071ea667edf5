import Foundation
import ReproGit
import ReproStore

/// `repro cache status|gc|invalidate` below the CLI: each a single call that refreshes what it
/// must first, so a command only parses and prints.
public enum CacheCommands {
    /// Entry states for HEAD, after bringing the stale marks up to date.
    public static func status(repo: GitRepository, store: Store) throws -> CacheStatus {
        _ = try store.refresh(repo: repo)
        let maxAge = try StoreConfig.load(storeRoot: store.root, repoRoot: repo.workdir).maxAge
        return try store.cacheStatus(maxAge: maxAge, headCommit: try repo.headCommit().id)
    }

    /// Evicts the outputs of the selected entries (stale ones, older ones) and deletes blobs
    /// nothing references.
    public static func gc(repo: GitRepository, store: Store, stale: Bool, olderThan: Double?, dryRun: Bool) throws -> GCReport {
        // First what needs no database write, so gc frees space on a full disk.
        var report = GCReport(dryRun: dryRun)
        store.removeLeftovers(dryRun: dryRun, into: &report)
        var filters: [EntrySelection] = []
        if stale {
            _ = try store.refresh(repo: repo)
            filters.append(.stale)
        }
        if let o = olderThan { filters.append(.olderThan(o)) }
        return try store.gc(filters: filters, dryRun: dryRun, report: report)
    }

    public enum InvalidateTarget: Sendable {
        case all, stale
        /// The key a spec file has now.
        case spec(String)
        /// A cache key or a unique prefix of one.
        case key(String)
    }

    /// Marks the entries stale by hand; returns how many.
    public static func invalidate(_ target: InvalidateTarget, store: Store, environment: [String: String], reason: String) throws -> Int {
        let selection: EntrySelection
        switch target {
        case .all: selection = .all
        case .stale: selection = .stale
        case .spec(let path): selection = .key(try Runner(RunRequest(specPath: path, environment: environment)).explain().key)
        case .key(let prefix): selection = .key(try store.resolveKey(prefix: prefix))
        }
        return try store.invalidate(selection, reason: reason)
    }
}
