import ArgumentParser
import Foundation
import ReproKit
import ReproGit
import ReproRemote
import ReproStore

struct RemoteAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Add a shared result cache to .repro.yaml (commit it: the team shares it).")

    @Argument(help: "A name for it, such as origin.") var name: String
    @Argument(help: "Where it is: s3://bucket/prefix.") var url: String
    @Option(help: "An S3-compatible endpoint instead of AWS, such as http://minio.lab:9000.") var endpoint: String?
    @Option(help: "The bucket's region (default: the AWS settings').") var region: String?
    @Flag(help: "Make it the remote push, pull and runs use.") var `default` = false
    @Flag(help: "Write it to this clone's .repro/config.yaml (not committed; kept whatever commit is checked out).") var local = false

    func validate() throws {
        guard RemoteSettings.isValidName(name) else { throw ValidationError("remote name '\(name)' may hold only letters, digits, '-' and '_'") }
    }

    func run() throws {
        try reporting {
            let repo = try GitRepository(discoveringFrom: FileManager.default.currentDirectoryPath)
            let loc = try S3Location(parsing: url, what: "the remote URL")
            let r = RemoteSettings(name: name, location: loc, endpoint: endpoint, region: region, isDefault: `default`, origin: "command line")
            let storeRoot = Store.defaultRoot(repoRoot: repo.workdir, environment: ProcessInfo.processInfo.environment)
            let file = local ? RemoteConfigFile.localPath(storeRoot: storeRoot) : RemoteConfigFile.path(repoRoot: repo.workdir)
            if local { try FileManager.default.createDirectory(atPath: storeRoot, withIntermediateDirectories: true) }
            try RemoteConfigFile.add(r, file: file)
            // The endpoint typed here is the user's own word, committed or not.
            if let endpoint, !local {
                try ProjectSecrets.acceptTyped(
                    path: "remotes.\(name).endpoint", value: endpoint,
                    storeRoot: Store.defaultRoot(repoRoot: repo.workdir, environment: ProcessInfo.processInfo.environment), repo: repo)
            }
            Console.out("added remote \(name) (\(loc))\(`default` ? " as the default" : "") to \(Format.path(file))")
            let env = ProcessInfo.processInfo.environment
            if let config = try? StoreConfig.load(storeRoot: Store.defaultRoot(repoRoot: repo.workdir, environment: env), repoRoot: repo.workdir),
                let hint = TeamCacheCommands.endpointHint(config: config, remoteEndpoint: endpoint, environment: env)
            {
                Console.err("note: " + hint)
            }
        }
    }
}
