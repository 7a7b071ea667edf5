import ArgumentParser
import Foundation
import ReproKit
import ReproSupport
import ReproGit
import ReproStore

struct ConfigTrust: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trust",
        abstract: "Accept the committed .repro.yaml's token names, token files, endpoints, signing key and write setting as they are now.")

    @Flag(name: .customLong("dry-run"), help: "Show what would be accepted, accept nothing.") var dryRun = false
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reporting {
            // The store's folder, made if needed: a fresh clone accepts before its first run.
            let env = ProcessInfo.processInfo.environment
            let repo = try GitRepository(discoveringFrom: FileManager.default.currentDirectoryPath)
            let storeRoot = Store.defaultRoot(repoRoot: repo.workdir, environment: env)
            let settings = dryRun
                ? try ProjectSecrets.pending(storeRoot: storeRoot, repoRoot: repo.workdir)
                : try ProjectSecrets.accept(storeRoot: storeRoot, repo: repo)
            if output.json {
                Console.json([
                    "accepted": .bool(!dryRun && !settings.isEmpty),
                    "settings": .array(settings.map { ["path": .string($0.path), "value": .string($0.value), "origin": .string($0.origin)] }),
                ])
                return
            }
            if settings.isEmpty {
                Console.out("nothing to accept: .repro.yaml sets no token, endpoint, signing key or write setting that .repro/config.yaml does not")
                return
            }
            for s in settings { Console.out("\(s.path): \(Redact.url(s.value))\t(\(s.origin))") }
            Console.out(dryRun
                ? "\(settings.count) setting(s) would be accepted; `repro config trust` accepts them"
                : "accepted \(settings.count) setting(s) for this clone; a change to any of them needs accepting again")
        }
    }
}
