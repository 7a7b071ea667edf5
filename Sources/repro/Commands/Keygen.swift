import ArgumentParser
import Foundation
import ReproKit

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "keygen", abstract: "Make an Ed25519 key pair for attestations: FILE (0600) and FILE.pub.")

    @Option(help: "Where to write the private key.") var out: String

    func run() throws {
        try reporting {
            try Attestation.keygen(out: out)
            Console.out("wrote \(out) (private, 0600) and \(out).pub")
        }
    }
}
