import ArgumentParser
import Foundation
import ReproKit

struct Pull: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pull",
        abstract: "Fetch results from a team cache: only what the selection needs, every byte re-hashed, trusted signers only.")

    @Argument(help: "Spec or sweep files (their current keys), cache keys (or unique prefixes), or run ids.") var selection: [String] = []
    @Option(help: "The remote (default: the default remote).") var remote: String?
    @Flag(help: "Also accept unsigned manifests and unknown signers (recorded with each run).") var trustUnsigned = false
    @Flag(help: "Say what would be fetched; fetch nothing.") var dryRun = false
    @OptionGroup var setOptions: SetOptions
    var overrides: [String] { setOptions.values }
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reporting {
            let c = try TeamCacheCommands.context(from: FileManager.default.currentDirectoryPath, environment: ProcessInfo.processInfo.environment)
            let cache = try TeamCacheCommands.open(c, remote: remote)
            let display = TransferDisplay()
            let (keys, notFound): ([String], [String])
            let s: TeamCache.PullSummary
            do {
                (keys, notFound) = try TeamCacheCommands.keysToPull(selection, cache: cache, overrides: overrides, c)
                s = try cache.pull(keys: keys, trustUnsigned: trustUnsigned, dryRun: dryRun, progress: display.show)
            } catch {
                throw TeamCacheCommands.explained(error, c, remote: remote)
            }
            display.end()
            if output.json {
                var o = s.json.objectValue ?? [:]
                o["not_found"] = .array((notFound + s.missing.map { "key \($0)" }).map { .string($0) })
                Console.json(.object(o))
            } else {
                let verb = dryRun ? "would pull" : "pulled"
                Console.out(
                    "\(cache.label): \(verb) \(s.pulled) run(s), \(s.blobs) blob(s), \(Format.bytes(s.bytes)) in \(Format.seconds(s.seconds)); \(s.present) already here"
                        + (s.missing.isEmpty ? "" : "; \(s.missing.count) key(s) not on the remote"))
                for n in notFound { Console.out("  not on the remote: \(n)") }
                if s.acceptedUntrusted > 0 { Console.out("  \(s.acceptedUntrusted) accepted without a trusted signature (--trust-unsigned; recorded)") }
                // The reason names the manifest (CacheManifest.verify says whose it is).
                for (_, why) in s.untrusted {
                    Console.out("  not served: \(why); add the producer's public key to cache.trusted_keys, or --trust-unsigned")
                }
                for (n, why) in s.rejected { Console.out("  REJECTED \(n): \(why)") }
                for f in s.findings {
                    Console.out("  REPRODUCIBILITY FINDING: key \(f.key.prefix(12)) has \(f.results.count) different results:")
                    for r in f.results { Console.out("    outputs \(r.digest.prefix(12)): \(r.producers.joined(separator: "; "))") }
                    Console.out("    settle it with `repro verify` on the spec; `repro audit \(f.key.prefix(12))` shows both")
                }
            }
            // Something was refused: a check failed, even if the rest arrived.
            if !s.rejected.isEmpty { throw ExitCode(1) }
        }
    }
}
