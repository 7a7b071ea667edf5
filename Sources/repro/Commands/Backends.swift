import ArgumentParser
import Foundation
import ReproKit
import ReproGit
import ReproStore
import ReproSupport

struct BackendsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backends",
        abstract: "List the backends this repository can use and check each (reachable, authenticated, staging writable).")

    @OptionGroup var output: OutputOptions

    @Option(name: .long, help: ArgumentHelp(
        "Run a small job on this backend and show what its node has (OS, C library, architecture) and whether repro starts there.",
        valueName: "NAME"))
    var probe: String?

    @Option(name: .long, help: "How long --probe waits for its job to be scheduled (e.g. 10m).")
    var wait: String = "10m"

    func run() throws {
        try reporting {
            let env = ProcessInfo.processInfo.environment
            let repo = try GitRepository(discoveringFrom: FileManager.default.currentDirectoryPath)
            let store = try Store(root: Store.defaultRoot(repoRoot: repo.workdir, environment: env))
            if let name = probe {
                guard let wait = DurationText.seconds(self.wait) else { throw ValidationError("--wait '\(self.wait)' is not a duration such as 10m") }
                let r = try BackendCheck.probe(name, wait: wait, repo: repo, store: store, environment: env)
                if output.json {
                    Console.json([
                        "backend": .string(name), "node": .string(r.node), "os": .string(r.os), "libc": .string(r.libc),
                        "arch": .string(r.arch), "repro_starts": .bool(r.reproStarts), "repro_output": .string(r.reproOutput),
                    ])
                } else {
                    Console.out("\(name): node \(r.node.isEmpty ? "?" : r.node)")
                    Console.out("  os      \(r.os)")
                    Console.out("  libc    \(r.libc)")
                    Console.out("  arch    \(r.arch)")
                    Console.out("  repro   " + (r.reproStarts ? "starts (\(r.reproOutput))" : "DOES NOT START: \(r.reproOutput)"))
                    if !r.reproStarts {
                        Console.out("  build a repro for this OS and set repro_path to it: see 'repro on the nodes' in docs/backends.md")
                    }
                }
                if !r.reproStarts { throw ExitCode(6) }
                return
            }
            let rows = try BackendCheck.run(repo: repo, store: store, environment: env)
            if output.json {
                Console.json(.array(rows.map(\.json)))
            } else {
                for r in rows {
                    Console.out("\(r.name) (\(r.type))\(r.configured ? "" : ", built in"): \(r.ok ? "ok" : "NOT READY")")
                    for p in r.problems { Console.out("  - \(p)" + (p.kind == .outage ? " (an outage: it may pass)" : "")) }
                }
            }
            // A configured backend that does not work is a failure; an unused built-in one is not.
            if rows.contains(where: { $0.configured && !$0.ok }) { throw ExitCode(6) }
        }
    }
}
