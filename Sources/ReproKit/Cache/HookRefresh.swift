import Foundation
import ReproSupport
import ReproGit
import ReproStore

/// What the git hooks do (`repro cache refresh --hook NAME`), and the refresh a busy store
/// made them postpone. A hook never holds up git: it waits at most `hookBusyTimeout` for the
/// store, and when another repro is writing it records that a refresh is owed instead.
public enum HookRefresh {
    public static let hookBusyTimeout: Double = 0.5

    static func owedMarker(_ storeRoot: String) -> String { storeRoot + "/refresh-owed" }

    /// Refreshes cache states for HEAD as the named hook (nil: by hand) with its arguments.
    /// Returns the line to print, or nil for nothing.
    public static func run(hook: String?, arguments: [String], repo: GitRepository, environment: [String: String]) throws -> String? {
        if let hook {
            // File checkouts (third argument 0) do not move HEAD; during a rebase each step
            // would report noise, so wait for post-rewrite.
            if hook == "post-checkout" && arguments.count >= 3 && arguments[2] != "1" { return nil }
            if hook != "post-rewrite" && repo.operationInProgress { return nil }
        }
        let root = Store.defaultRoot(repoRoot: repo.workdir, environment: environment)
        guard FileManager.default.fileExists(atPath: root + "/store.sqlite") else { return nil }
        let summary: RefreshSummary
        do {
            let store = try Store(root: root, busyTimeout: hook == nil ? 30 : hookBusyTimeout)
            summary = try store.refresh(repo: repo)
            unlink(owedMarker(root))
        } catch let e as StoreError where e.isBusy && hook != nil {
            try? FileIO.writeAtomically(Array((repo.workdir + "\n").utf8), to: owedMarker(root), sync: false)
            return "repro: the store is busy (another repro is writing); cache states will be refreshed by the next repro command"
        }
        if let line = summary.line { return line }
        return hook == nil ? "repro: nothing changed at \(summary.headCommit.prefix(12))" : nil
    }

    /// Does the refresh a hook postponed, if one is owed. Cheap when none is (one access()).
    public static func settleOwed(store: Store, repo: GitRepository) {
        let marker = owedMarker(store.root)
        guard access(marker, F_OK) == 0 else { return }
        if (try? store.refresh(repo: repo)) != nil { unlink(marker) }
    }
}
