import ArgumentParser
import Foundation
import ReproKit
import ReproSupport
import ReproGit

struct HooksInstall: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install", abstract: "Install the post-commit, post-checkout, post-merge and post-rewrite hooks.")

    @Flag(help: "Install even when a chained hook already exists (nothing is deleted).")
    var force = false

    @OptionGroup var output: OutputOptions

    func run() throws {
        try reporting {
            let repo = try GitRepository(discoveringFrom: FileManager.default.currentDirectoryPath)
            // The hooks call this very binary, so one run by its path works without PATH.
            let me = HostInfo.currentExecutable
            let result = try HookInstaller(repo: repo).install(force: force, reproPath: me)
            HooksStatus.print(result, json: output.json)
            if let warning = HookInstaller.reachabilityWarning(reproPath: me, path: ProcessInfo.processInfo.environment["PATH"] ?? "") {
                Console.err("repro: warning: " + warning)
            }
        }
    }
}
