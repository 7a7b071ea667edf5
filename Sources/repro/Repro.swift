import ArgumentParser
import Foundation
import ReproKit

@main
struct Repro: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repro",
        abstract: "Run simulations with provenance: every result tied to its code, config, seed and precision, and cached.",
        version: HostInfo.reproVersion,
        subcommands: [Run.self, Log.self, Show.self]
    )
}
