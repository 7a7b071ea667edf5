import ArgumentParser
import Foundation
import ReproKit
import ReproSupport

struct Logs: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logs", abstract: "Print what a run wrote to stdout (or stderr).")

    @Argument(help: "A run id, or a unique prefix of one (default: the newest run).")
    var runId: String?

    @Flag(help: "Print its stderr instead of its stdout.")
    var stderr = false

    func run() throws {
        try reporting {
            let store = try openStore()
            guard let r = try runId.map({ try store.run(matching: $0) }) ?? store.recentRuns(limit: 1).first else {
                throw NotFoundError("the store at \(store.root) holds no runs yet; `repro run SPEC` records one")
            }
            let which = stderr ? "stderr" : "stdout"
            guard let blob = stderr ? r.stderrBlob : r.stdoutBlob else {
                throw NotFoundError("run \(r.runId) has no \(which) recorded (it is \(r.status.rawValue))")
            }
            let out = FileHandle.standardOutput
            // Byte for byte into a pipe or file; on a terminal without its control characters
            // (a simulation's output must not drive the user's terminal).
            let tty = isatty(1) == 1
            try store.streamBlob(blob) { piece in
                out.write(tty ? Data(Terminal.clean(String(decoding: piece, as: UTF8.self)).utf8) : Data(piece))
            }
        }
    }
}
