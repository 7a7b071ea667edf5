import ArgumentParser
import Foundation
import ReproKit

struct LineageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lineage", abstract: "Show the runs upstream of a file, hash, run or key (inputs that were outputs).")

    @Argument(help: "A file, a SHA-256, a run id (or prefix) or a cache key.")
    var target: String

    @Flag(help: "Print Graphviz dot text.") var dot = false
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reporting {
            let (repo, store) = try openRepoAndStore()
            let resolution = try Auditor(store: store, repo: repo).resolve(target)
            // A file repro wrote: the run that served it, not every run with the same bytes.
            let roots = resolution.servedBy.flatMap { id in resolution.runs.filter { $0.runId == id } } ?? resolution.runs
            let (nodes, edges) = try ReproKit.Lineage(store: store, repoRoot: repo.workdir).graph(from: roots)
            if dot {
                Console.out(ReproKit.Lineage.dot(nodes: nodes, edges: edges))
            } else if output.json {
                Console.json(ReproKit.Lineage.json(nodes: nodes, edges: edges))
            } else {
                for n in nodes {
                    Console.out("\(n.runId)  \(n.name)  commit \(n.commit.prefix(10))  seed \(n.seed)  \(n.status.rawValue)")
                    for e in edges where e.to == n.runId {
                        Console.out("  ← \(e.input) from \(e.from) (sha256 \(e.sha256.prefix(12)))")
                    }
                }
            }
        }
    }
}
