import ArgumentParser
import Foundation
import ReproKit

struct RemoteAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Add a shared result cache to .repro.yaml (commit it: the team shares it).")

    @Argument(help: "A name for it, such as origin.") var name: String
    @Argument(help: "Where it is: s3://bucket/prefix.") var url: String
    @Option(help: "An S3-compatible endpoint instead of AWS, such as http://minio.lab:9000.") var endpoint: String?
    @Option(help: "The bucket's region (default: the AWS settings').") var region: String?
    @Flag(help: "Make it the remote push, pull and runs use.") var `default` = false

    func validate() throws {
        guard RemoteSettings.isValidName(name) else { throw ValidationError("remote name '\(name)' may hold only letters, digits, '-' and '_'") }
    }

    func run() throws {
        try reporting {
            let repo = try GitRepository(discoveringFrom: FileManager.default.currentDirectoryPath)
            let loc = try S3Location(parsing: url, what: "the remote URL")
            let r = RemoteSettings(name: name, location: loc, endpoint: endpoint, region: region, isDefault: `default`, origin: "command line")
            try RemoteConfigFile.add(r, repoRoot: repo.workdir)
            // The endpoint typed here is the user's own word, committed or not.
            if let endpoint {
                try ProjectSecrets.acceptTyped(
                    path: "remotes.\(name).endpoint", value: endpoint,
                    storeRoot: Store.defaultRoot(repoRoot: repo.workdir, environment: ProcessInfo.processInfo.environment), repo: repo)
            }
            Console.out("added remote \(name) (\(loc))\(`default` ? " as the default" : "") to \(Format.path(RemoteConfigFile.path(repoRoot: repo.workdir)))")
        }
    }
}
