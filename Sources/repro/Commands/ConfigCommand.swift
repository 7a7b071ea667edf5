import ArgumentParser
import Foundation
import ReproKit

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Review and accept the committed .repro.yaml's settings that decide where tokens, keys and results go.",
        subcommands: [ConfigTrust.self])
}
