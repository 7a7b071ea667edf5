import ArgumentParser
import Foundation
import ReproKit

struct CacheInvalidate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "invalidate",
        abstract: "Mark entries stale by hand (a change the spec cannot see); they are re-run, never served.")

    @Flag(help: "Every entry.") var all = false
    @Option(help: "The entries with the key this spec has now.") var config: String?
    @Option(help: "The entries with this cache key (or a unique prefix).") var key: String?
    @Flag(help: "The entries already stale for HEAD (so checking out their commit does not revive them).") var stale = false
    @Option(help: "Why (recorded with the entries).") var reason: String?

    func validate() throws {
        let chosen = [all, config != nil, key != nil, stale].filter { $0 }.count
        guard chosen == 1 else { throw ValidationError("choose exactly one of --all, --config FILE, --key KEY, --stale") }
    }

    func run() throws {
        try reporting {
            let (_, store) = try openRepoAndStore()
            let target: CacheCommands.InvalidateTarget = all ? .all : stale ? .stale : config.map { .spec($0) } ?? .key(key ?? "")
            let n = try CacheCommands.invalidate(
                target, store: store, environment: ProcessInfo.processInfo.environment, reason: reason ?? "invalidated by hand")
            Console.out("invalidated \(n) entr\(n == 1 ? "y" : "ies")")
        }
    }
}
