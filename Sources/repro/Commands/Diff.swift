import ArgumentParser
import Foundation
import ReproKit
import ReproSupport

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "diff",
        abstract: "Show how two runs differ: identity fields, then outputs (JSON and CSV field by field).")

    @Argument(help: "The first run id (or prefix).") var runA: String
    @Argument(help: "The second run id (or prefix).") var runB: String
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reporting {
            let (_, store) = try openRepoAndStore()
            let d = try RunDiff.compare(try store.run(matching: runA), try store.run(matching: runB), store: store)
            // Exit 1 when the outputs differ, as `diff` and `git diff --exit-code` do.
            let differ = d.outputs.contains { $0.verdict != .identical } || !d.onlyInA.isEmpty || !d.onlyInB.isEmpty
            if output.json {
                Console.json(d.json)
                if differ { throw ExitCode(1) }
                return
            }
            var lines = ["\(d.runA) vs \(d.runB)"]
            if d.identity.isEmpty { lines.append("identity: the same") }
            for f in d.identity { lines.append("  \(f.kind.padding(toLength: 10, withPad: " ", startingAt: 0)) \(f.field): \(show(f.a)) → \(show(f.b))") }
            for c in d.outputs {
                lines.append("output \(c.name): \(c.verdict.rawValue)")
                for x in c.differences { lines.append("    \(x.location): \(x.old) → \(x.new)") }
                if c.differenceCount > c.differences.count { lines.append("    ... \(c.differenceCount - c.differences.count) more") }
            }
            for n in d.onlyInA { lines.append("output \(n): only in \(d.runA)") }
            for n in d.onlyInB { lines.append("output \(n): only in \(d.runB)") }
            Console.out(lines.joined(separator: "\n"))
            if differ { throw ExitCode(1) }
        }
    }

    func show(_ v: JSONValue) -> String {
        if case .string(let s) = v { return s }
        return v.canonical
    }
}
