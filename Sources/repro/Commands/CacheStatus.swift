import ArgumentParser
import Foundation
import ReproKit
import ReproSupport

struct CacheStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Count entries current for HEAD, stale (and why), expired and failed.")

    @OptionGroup var output: OutputOptions

    func run() throws {
        try reporting {
            let (repo, store) = try openRepoAndStore()
            let st = try CacheCommands.status(repo: repo, store: store)
            if output.json {
                Console.json(st.json)
                return
            }
            var lines = [
                "cache at \(Format.path(store.root)) for HEAD \(st.headCommit.prefix(12)):",
                "  current      \(st.current)",
                "  stale        \(st.stale)\(st.invalidated > 0 ? " (\(st.invalidated) invalidated by hand)" : "")",
                "  expired      \(st.expired)  (older than \(DurationText.format(st.maxAge)))",
                "  evicted      \(st.evicted)",
                "  failed       \(st.failed)\(st.interrupted > 0 ? ", interrupted \(st.interrupted)" : "")",
            ]
            if st.perturbed > 0 { lines.append("  verify runs  \(st.perturbed)  (`repro verify --perturb` runs: recorded, never served)") }
            lines += [
                "  blobs        \(st.blobs), \(Format.bytes(st.bytes)) stored",
            ]
            if !st.reasons.isEmpty {
                lines.append("stale because:")
                for r in st.reasons { lines.append("  \(r.count) entr\(r.count == 1 ? "y" : "ies"): \(r.reason.path) changed \(r.reason.from.prefix(12)) → \(r.reason.to.prefix(12))") }
            }
            Console.out(lines.joined(separator: "\n"))
        }
    }
}
