import ArgumentParser
import Foundation
import ReproKit
import ReproGit
import ReproStore

struct RemoteRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove", abstract: "Remove a shared result cache from .repro.yaml (the bucket is not touched).")

    @Argument(help: "The remote's name.") var name: String

    func run() throws {
        try reporting {
            let repo = try GitRepository(discoveringFrom: FileManager.default.currentDirectoryPath)
            let gone = try RemoteConfigFile.remove(
                name: name, repoRoot: repo.workdir,
                storeRoot: Store.defaultRoot(repoRoot: repo.workdir, environment: ProcessInfo.processInfo.environment))
            Console.out("removed remote \(name) (\(gone.location)); nothing in the bucket was deleted")
        }
    }
}
