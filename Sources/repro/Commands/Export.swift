import ArgumentParser
import Foundation
import ReproKit

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export", abstract: "Export a run's provenance in a standard format (W3C PROV-JSON).")

    @Argument(help: "A run id (or prefix).") var runId: String
    @Option(help: "The format: prov-json.") var format: String = "prov-json"

    func validate() throws {
        guard format == "prov-json" else { throw ValidationError("--format must be prov-json") }
    }

    func run() throws {
        try reporting {
            let (_, store) = try openRepoAndStore()
            Console.json(try ProvExport.document(run: try store.run(matching: runId), store: store))
        }
    }
}
