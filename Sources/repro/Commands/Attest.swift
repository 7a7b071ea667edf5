import ArgumentParser
import Foundation
import ReproKit

struct Attest: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "attest",
        abstract: "Sign a run's provenance (in-toto Statement in a DSSE envelope, Ed25519) and keep it with the run.")

    @Argument(help: "A run id (or prefix).") var runId: String
    @Option(help: "The Ed25519 private key (from `repro keygen`).") var key: String
    @Option(help: "Also write the envelope to this file.") var out: String?

    func run() throws {
        try reporting {
            let (_, store) = try openRepoAndStore()
            let r = try store.run(matching: runId)
            let (envelope, keyid) = try Attestation.sign(run: r, keyPath: key)
            try store.addAttestation(runId: r.runId, keyid: keyid, envelope: envelope)
            if let out {
                // A failed write is an error, never a success message.
                try ReportFile.write(envelope, to: out)
            }
            Console.out("attested run \(r.runId): \(r.outputs.count) output\(r.outputs.count == 1 ? "" : "s"), key \(keyid.prefix(16))\(out.map { ", written to \($0)" } ?? "")")
        }
    }
}
