import Foundation
import ReproSupport

extension Store {
    /// A cached probe, valid while none of the folders it watched (site-packages, ...) and the
    /// interpreter itself changed.
    package func cachedProbe(key: String) -> InterpreterInfo? {
        let rows = try? db.prepare("SELECT result_json, watched_json FROM interpreter_cache WHERE key = ?").query([.text(key)]) {
            ($0.text(0), $0.text(1))
        }
        guard let row = rows?.first, let result = try? JSONParser.parse(row.0), let watched = try? JSONParser.parse(row.1).objectValue
        else { return nil }
        for (path, sig) in watched where FileIO.statSignature(path) != sig.stringValue { return nil }
        // Entries from before environments were recorded (no prefix) are asked again.
        guard result["prefix"] != nil else { return nil }
        return InterpreterInfo(json: result)
    }

    package func cacheProbe(key: String, info: InterpreterInfo, watched: [String]) {
        let result = info.jsonWithPackages.objectValue ?? [:]
        let sigs = JSONValue.object(Dictionary(watched.map { ($0, .string(FileIO.statSignature($0))) }, uniquingKeysWith: { a, _ in a }))
        // Best effort: a busy store must not fail a run over a cache entry.
        try? db.prepare("INSERT OR REPLACE INTO interpreter_cache (key, result_json, watched_json) VALUES (?, ?, ?)")
            .run([.text(key), .text(JSONValue.object(result).canonical), .text(sigs.canonical)])
    }
}
