import Foundation
import ReproSupport

/// Reading a finished task's files for the record: the inline result and the stderr tail.
enum TaskFiles {
    /// `result.json` (at any depth) is kept inline for the `results` view when it is valid JSON.
    static func inlineJSON(_ name: String, _ path: String) -> String? {
        guard name == "result.json" || name.hasSuffix("/result.json") else { return nil }
        // Larger results stay blobs only: the view is for quick SQL, not bulk data.
        guard let bytes = try? FileIO.readAll(path, limit: 4 << 20), (try? JSONParser.parse(bytes)) != nil else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The last lines of the simulation's stderr, shown when it fails.
    static func tail(_ path: String, lines: Int = 15) -> String? {
        let bytes = FileIO.readTail(path, maxBytes: 8192)
        guard !bytes.isEmpty else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        let last = text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines + 1)
        return "--- last lines of the simulation's stderr ---\n" + last.joined(separator: "\n")
    }
}
