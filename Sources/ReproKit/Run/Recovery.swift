import Foundation
import ReproExecution
import ReproSupport
import ReproGit
import ReproStore

/// Crash recovery: a run left `running` by a process that died (kill -9, power loss) is marked
/// interrupted. A live run always holds the flock on its key, so a free lock means a dead owner.
enum Recovery {
    static func markDeadRunsInterrupted(_ store: Store) throws {
        // Only local runs die with their repro process; a run on a scheduler outlives it and is
        // picked up by `repro status` or `repro wait`.
        let running = try store.runs(inStatus: .running).filter { !Backends.outlivesSubmitter($0) }
        for r in running {
            guard try store.keyLocks.tryLock(r.key) else { continue }
            defer { store.keyLocks.unlock(r.key) }
            // Re-read under the lock: the owner may have finished between the query and now.
            try store.markInterrupted(
                runId: r.runId,
                message: "the repro process (pid \(r.pid.map(String.init) ?? "?") on \(r.host)) ended before the run finished")
            FileIO.removeTree(store.tmpDir + "/run-" + r.runId)
        }
    }
}

/// Where repro puts a run's outputs by default: `results/<name>/<first 12 hex of the key>/`.
public enum ResultsDir {
    public static func path(repoRoot: String, name: String, key: String) -> String {
        repoRoot + "/results/\(name)/\(key.prefix(12))"
    }
}

/// Keeps repro's own folders out of `git status` without touching the user's .gitignore:
/// the store ignores itself, and `/results/` and `/.repro/` go into `.git/info/exclude`.
enum RepoIgnore {
    static func ensure(repo: GitRepository, storeRoot: String) {
        let infoDir = repo.commonDir + "/info"
        let exclude = infoDir + "/exclude"
        let wanted = ["/.repro/", "/results/"]
        // Read on every command: plain bytes and an ASCII trim, not Foundation's String(contentsOfFile:)
        // and trimmingCharacters (a tenth of a cache hit's own time, in type lookups).
        var bytes: [UInt8] = []
        do {
            bytes = try FileIO.readAll(exclude, limit: 16 << 20)
        } catch {
            // A file there that cannot be read is left alone (rewriting it would lose its lines).
            if access(exclude, F_OK) == 0 { return }
        }
        let existing = String(decoding: bytes, as: UTF8.self)
        let blank: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
        let lines = Set(bytes.split(separator: 0x0A).map { line -> String in
            guard let a = line.firstIndex(where: { !blank($0) }), let z = line.lastIndex(where: { !blank($0) }) else { return "" }
            return String(decoding: line[a...z], as: UTF8.self)
        })
        let missing = wanted.filter { !lines.contains($0) }
        guard !missing.isEmpty else { return }
        try? FileManager.default.createDirectory(atPath: infoDir, withIntermediateDirectories: true)
        var text = existing
        if !text.isEmpty && !text.hasSuffix("\n") { text += "\n" }
        text += "# added by repro: its store and materialized results are not source\n"
        text += missing.joined(separator: "\n") + "\n"
        try? FileIO.writeAtomically(Array(text.utf8), to: exclude, sync: false)
    }
}
