import ArgumentParser
import Foundation
import ReproKit

struct HooksInstall: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install", abstract: "Install the post-commit, post-checkout, post-merge and post-rewrite hooks.")

    @Flag(help: "Install even when a chained hook already exists (nothing is deleted).")
    var force = false

    @OptionGroup var output: OutputOptions

    func run() throws {
        try reporting {
            let repo = try GitRepository(discoveringFrom: FileManager.default.currentDirectoryPath)
            let result = try HookInstaller(repo: repo).install(force: force)
            HooksStatus.print(result, json: output.json)
        }
    }
}
