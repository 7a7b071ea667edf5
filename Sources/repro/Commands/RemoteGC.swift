import ArgumentParser
import Foundation
import ReproKit

struct RemoteGC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove old manifests no kept run needs, then blobs no manifest names (never a blob a manifest still names).")

    @Option(help: "Keep manifests pushed in the last N days.") var keepDays: Double
    @Option(help: "The remote (default: the default remote).") var remote: String?
    @Flag(help: "Say what would be removed; remove nothing.") var dryRun = false
    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard keepDays >= 0 else { throw ValidationError("--keep-days must be 0 or more") }
    }

    func run() throws {
        try reporting {
            let c = try TeamCacheCommands.context(from: FileManager.default.currentDirectoryPath, environment: ProcessInfo.processInfo.environment)
            let cache = try TeamCacheCommands.open(c, remote: remote)
            let s = try cache.gc(keepDays: keepDays, dryRun: dryRun)
            if output.json { return Console.json(s.json) }
            let verb = dryRun ? "would remove" : "removed"
            Console.out(
                "\(cache.label): \(verb) \(s.manifestsRemoved) manifest(s) and \(s.blobsRemoved) blob(s) (\(Format.bytes(s.bytesFreed))); kept \(s.manifestsKept) manifest(s)"
                    + (s.keptForLineage > 0 ? ", \(s.keptForLineage) of them old but needed by a kept run's inputs" : "")
                    + (s.blobsInGrace > 0 ? "; \(s.blobsInGrace) unreferenced blob(s) younger than a day left (a push may be under way)" : ""))
        }
    }
}
