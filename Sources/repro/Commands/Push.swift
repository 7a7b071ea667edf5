import ArgumentParser
import Foundation
import ReproKit

struct Push: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "push",
        abstract: "Share results: upload run records (signed manifests) and their blobs to a team cache. Incremental.")

    @Argument(help: "Spec or sweep files (their current keys), run ids, or cache keys.") var selection: [String] = []
    @Flag(help: "Every succeeded run in the store.") var all = false
    @OptionGroup var setOptions: SetOptions
    var overrides: [String] { setOptions.values }
    @Option(help: "The remote (default: the default remote).") var remote: String?
    @Option(help: "The Ed25519 private key that signs the manifests (default: cache.signing_key).") var key: String?
    @Flag(help: "Push without a signature (nobody will be served it without --trust-unsigned).") var unsigned = false
    @Flag(help: "Say what would be uploaded; upload nothing.") var dryRun = false
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if all && !selection.isEmpty { throw ValidationError("give either a selection or --all, not both") }
        if !overrides.isEmpty && (all || selection.isEmpty) { throw ValidationError("--set applies to the spec files named") }
    }

    func run() throws {
        try reporting {
            let c = try TeamCacheCommands.context(from: FileManager.default.currentDirectoryPath, environment: ProcessInfo.processInfo.environment)
            let cache = try TeamCacheCommands.open(c, remote: remote)
            let signer = try TeamCacheCommands.signingKey(option: key, unsigned: unsigned, c)
            let (runs, notFound) = try TeamCacheCommands.runsToPush(selection, all: all, overrides: overrides, c)
            let display = TransferDisplay()
            let s: TeamCache.PushSummary
            do { s = try cache.push(runs, signingKey: signer, dryRun: dryRun, progress: display.show) } catch {
                throw TeamCacheCommands.explained(error, c, remote: remote)
            }
            display.end()
            if output.json {
                var o = s.json.objectValue ?? [:]
                o["not_found"] = .array(notFound.map { .string($0) })
                return Console.json(.object(o))
            }
            let verb = dryRun ? "would push" : "pushed"
            Console.out(
                "\(cache.label): \(verb) \(s.pushed) run(s), \(s.blobs) blob(s), \(Format.bytes(s.bytes)) in \(Format.seconds(s.seconds)); \(s.present) already there"
                    + (s.signer.map { "; signed by key \($0)" } ?? "; UNSIGNED"))
            for (id, why) in s.skipped.prefix(20) { Console.out("  skipped run \(id): \(why)") }
            if s.skipped.count > 20 { Console.out("  ... and \(s.skipped.count - 20) more skipped") }
            for n in notFound { Console.out("  not pushed: \(n)") }
        }
    }
}
