import ArgumentParser
import Foundation
import ReproKit
import ReproGit

struct HooksStatus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show which hooks are installed, chained, missing or foreign.")

    @OptionGroup var output: OutputOptions

    func run() throws {
        try reporting {
            let repo = try GitRepository(discoveringFrom: FileManager.default.currentDirectoryPath)
            HooksStatus.print(try HookInstaller(repo: repo).status(), json: output.json)
        }
    }

    static func print(_ hooks: [HookInstaller.HookStatus], json: Bool) {
        if json {
            Console.json(.object(["hooks": .array(hooks.map(\.json))]))
            return
        }
        Console.out(Table.render([["HOOK", "STATE", "PATH"]] + hooks.map { [$0.name, $0.state.rawValue, Format.path($0.path)] }))
    }
}
