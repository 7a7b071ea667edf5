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
                Console.out(report.ok ? "store is healthy" : "\(report.problems.count) problem\(report.problems.count == 1 ? "" : "s") found")
            }
            if !report.ok { throw ExitCode(1) }
        }
    }
}
