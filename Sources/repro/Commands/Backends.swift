import ArgumentParser
import Foundation
import ReproKit
import ReproGit
import ReproStore

struct BackendsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backends",
        abstract: "List the backends this repository can use and check each (reachable, authenticated, staging writable).")

    @OptionGroup var output: OutputOptions

    func run() throws {
        try reporting {
            let env = ProcessInfo.processInfo.environment
            let repo = try GitRepository(discoveringFrom: FileManager.default.currentDirectoryPath)
            let store = try Store(root: Store.defaultRoot(repoRoot: repo.workdir, environment: env))
            let rows = try BackendCheck.run(repo: repo, store: store, environment: env)
            if output.json {
                Console.json(.array(rows.map(\.json)))
            } else {
                for r in rows {
                    Console.out("\(r.name) (\(r.type))\(r.configured ? "" : ", built in"): \(r.ok ? "ok" : "NOT READY")")
                    for p in r.problems { Console.out("  - \(p)") }
                }
            }
            // A configured backend that does not work is a failure; an unused built-in one is not.
            if rows.contains(where: { $0.configured && !$0.ok }) { throw ExitCode(6) }
        }
    }
}
