import ArgumentParser
import Foundation
import ReproKit

struct Fsck: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fsck",
        abstract: "Check every blob against its hash, every database reference, and SQLite's integrity.")

    @OptionGroup var output: OutputOptions

    func run() throws {
        try reporting {
            let (_, store) = try openRepoAndStore()
            let report = try store.fsck()
            if output.json {
                Console.json(report.json)
            } else {
                Console.out("checked \(report.blobsChecked) blobs, \(report.referencesChecked) references; SQLite integrity: \(report.integrity.joined(separator: "; "))")
                for p in report.problems { Console.out("\(p.kind): \(p.detail)") }
                if !report.dangling.isEmpty {
                    // Information, as git's dangling objects are: interrupted runs leave them.
                    Console.out("dangling: \(report.dangling.count) blob(s) no run record names (left by interrupted runs, or by records lost); "
                        + "`repro cache gc` removes them once they are an hour old")
                    for d in report.dangling.prefix(5) { Console.out("  \(d.detail.split(separator: " ").prefix(2).joined(separator: " "))") }
                    if report.dangling.count > 5 { Console.out("  ... \(report.dangling.count - 5) more (--json lists all)") }
                }
                Console.out(report.ok ? "store is healthy" : "\(report.problems.count) problem\(report.problems.count == 1 ? "" : "s") found: the store is damaged")
            }
            // Damage exits 4 (as `repro verify`'s verdicts have codes of their own); dangling blobs do not.
            if !report.ok { throw ExitCode(4) }
        }
    }
}
