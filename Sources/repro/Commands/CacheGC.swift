import ArgumentParser
import Foundation
import ReproKit
import ReproSupport

struct CacheGC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Evict output blobs of selected entries and delete blobs nothing references (records stay).")

    @Flag(help: "Evict the outputs of stale entries.") var stale = false
    @Option(name: .customLong("older-than"), help: "Evict the outputs of entries older than this (e.g. 30d).")
    var olderThan: String?
    @Flag(help: "Say what would be freed, change nothing.") var dryRun = false
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if let o = olderThan, DurationText.seconds(o) == nil {
            throw ValidationError("--older-than '\(o)' is not a duration; write e.g. 30d, 12h or 90m")
        }
    }

    func run() throws {
        try reporting {
            let (repo, store) = try openRepoAndStore()
            let report = try CacheCommands.gc(
                repo: repo, store: store, stale: stale, olderThan: olderThan.flatMap(DurationText.seconds), dryRun: dryRun)
            if output.json {
                Console.json(report.json)
                return
            }
            let verb = dryRun ? "would evict" : "evicted"
            Console.out(
                "\(verb) the outputs of \(report.entriesEvicted) entr\(report.entriesEvicted == 1 ? "y" : "ies"); "
                    + "\(dryRun ? "would remove" : "removed") \(report.blobsRemoved) blob\(report.blobsRemoved == 1 ? "" : "s")"
                    + (report.tempFilesRemoved > 0 ? " and \(report.tempFilesRemoved) temp file(s) of killed writes" : "")
                    + (report.taskFoldersRemoved > 0 ? " and \(report.taskFoldersRemoved) task folder(s) left by killed runs" : "")
                    + (report.bytecodeFoldersRemoved > 0 ? " and \(report.bytecodeFoldersRemoved) idle bytecode folder(s)" : "") + ", "
                    + "\(Format.bytes(report.bytesFreed)) \(dryRun ? "to free" : "freed")")
            if let w = report.warning { Console.err("warning: " + w) }
        }
    }
}
