import ArgumentParser
import Foundation
import ReproKit
import ReproGit

struct HooksUninstall: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uninstall", abstract: "Remove repro's hooks and restore the hooks they chained.")

    @OptionGroup var output: OutputOptions

    func run() throws {
        try reporting {
            let repo = try GitRepository(discoveringFrom: FileManager.default.currentDirectoryPath)
            let result = try HookInstaller(repo: repo).uninstall()
            HooksStatus.print(result, json: output.json)
        }
    }
}
