import ArgumentParser
import ReproKit

@main
struct Repro: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "repro", abstract: "Run simulations with provenance.")
}
