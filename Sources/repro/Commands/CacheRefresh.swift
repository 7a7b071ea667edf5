import ArgumentParser
import Foundation
import ReproKit
import ReproGit

struct CacheRefresh: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "refresh", abstract: "Recompute which cache entries are current for HEAD (what the git hooks run).")

    @Option(help: ArgumentHelp("The git hook calling this (post-commit, post-checkout, post-merge, post-rewrite).", visibility: .hidden))
    var hook: String?

    @Argument(parsing: .postTerminator, help: ArgumentHelp("The hook's own arguments, after --.", visibility: .hidden))
    var hookArguments: [String] = []

    func run() throws {
        try reporting {
            let repo = try GitRepository(discoveringFrom: FileManager.default.currentDirectoryPath)
            let args = hookArguments.first == "--" ? Array(hookArguments.dropFirst()) : hookArguments
            if let line = try HookRefresh.run(hook: hook, arguments: args, repo: repo, environment: ProcessInfo.processInfo.environment) {
                Console.err(line)
            }
        }
    }
}
