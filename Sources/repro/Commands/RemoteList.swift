import ArgumentParser
import Foundation
import ReproKit
import ReproSupport

struct RemoteList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the shared result caches and how runs use them.")

    @OptionGroup var output: OutputOptions

    func run() throws {
        try reporting {
            let c = try TeamCacheCommands.context(from: FileManager.default.currentDirectoryPath, environment: ProcessInfo.processInfo.environment)
            let runRemote = try? c.config.runRemote()
            let t = c.config.teamCache
            let list = c.config.remotes.values.sorted { $0.name < $1.name }
            let trusted = try TrustedKeys.load(t, repoRoot: c.repo.workdir)
            if output.json {
                Console.json([
                    "remotes": .array(list.map {
                        [
                            "name": .string($0.name), "url": .string($0.location.description), "endpoint": $0.endpoint.map(Redact.url).json,
                            "region": $0.region.json, "default": .bool($0.isDefault), "origin": .string($0.origin),
                        ]
                    }),
                    "runs_read": runRemote.map { .string($0.name) } ?? .null, "read": .string(t.read.rawValue), "write": .bool(t.write),
                    "signing_key": t.signingKey.json,
                    "trusted_keys": .array(trusted.byId.sorted { $0.key < $1.key }.map { ["keyid": .string($0.key), "source": .string($0.value.label)] }),
                ])
                return
            }
            if list.isEmpty { Console.out("no remotes; add one with `repro remote add origin s3://bucket/prefix --default`") }
            for r in list {
                var notes: [String] = []
                if r.isDefault { notes.append("default") }
                if runRemote?.name == r.name { notes.append("runs read\(t.write ? " and write" : "")") }
                if let e = r.endpoint { notes.append("endpoint \(Redact.url(e))") }
                Console.out("\(r.name)\t\(r.location)\(notes.isEmpty ? "" : "\t(" + notes.joined(separator: ", ") + ")")")
            }
            Console.out("trusted keys: \(trusted.byId.isEmpty ? "none (nothing pulled will be served; add cache.trusted_keys)" : trusted.byId.map { "\($0.key.prefix(16)) (\($0.value.label))" }.sorted().joined(separator: ", "))")
        }
    }
}
