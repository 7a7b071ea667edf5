import ArgumentParser
import Foundation
import ReproKit

struct CacheRefresh: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "refresh", abstract: "Recompute which cache entries are current for HEAD (what the git hooks run).")

    @Option(help: ArgumentHelp("The git hook calling this (post-commit, post-checkout, post-merge, post-rewrite).", visibility: .hidden))
    var hook: String?

    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The hook's own arguments.", visibility: .hidden))
    var hookArguments: [String] = []

    func run() throws {
        try reporting {
            let repo = try GitRepository(discoveringFrom: FileManager.default.currentDirectoryPath)
            let args = hookArguments.first == "--" ? Array(hookArguments.dropFirst()) : hookArguments
            if let hook {
                // File checkouts (third argument 0) do not move HEAD; during a rebase each step
                // would report noise, so wait for post-rewrite.
                if hook == "post-checkout" && args.count >= 3 && args[2] != "1" { return }
                if hook != "post-rewrite" && repo.operationInProgress { return }
            }
            let root = Store.defaultRoot(repoRoot: repo.workdir)
            guard FileManager.default.fileExists(atPath: root + "/store.sqlite") else { return }
            let summary = try Store(root: root).refresh(repo: repo)
            if let line = summary.line {
                Console.err(line)
            } else if hook == nil {
                Console.err("repro: nothing changed at \(summary.headCommit.prefix(12))")
            }
        }
    }
}
