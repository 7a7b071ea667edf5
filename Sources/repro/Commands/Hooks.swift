import ArgumentParser

struct Hooks: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "hooks",
        abstract: "Install git hooks that mark cache entries stale when their code changes.",
        subcommands: [HooksInstall.self, HooksUninstall.self, HooksStatus.self])
}
