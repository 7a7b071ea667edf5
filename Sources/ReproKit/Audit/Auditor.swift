import Foundation
import ReproSupport
import ReproGit
import ReproStore

/// Answers "where did this come from?" from the store: finds the runs behind a file, a hash, a
/// run id or a cache key, and assembles what is known about each.
public final class Auditor {
    public let store: Store
    let repo: GitRepository?
    let maxAge: Double

    public init(store: Store, repo: GitRepository?) throws {
        self.store = store
        self.repo = repo
        maxAge = try StoreConfig.load(storeRoot: store.root).maxAge
    }

    /// What a target resolved to.
    public struct Resolution: Sendable {
        public var runs: [RunRecord]
        /// How the target was read: "file", "sha256", "run", "key".
        public var kind: String
        /// For a file or hash: its SHA-256, and which output name(s) had it.
        public var sha256: String?
        public var matchedOutputs: [String: String] = [:]
        /// For a file: the run repro wrote it from (recorded when it was materialized).
        public var servedBy: String?
    }

    /// A file path (hashed, then looked up among all outputs whatever its name), a SHA-256,
    /// a run id (or unique prefix) or a cache key (or unique prefix).
    public func resolve(_ target: String) throws -> Resolution {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: target, isDirectory: &isDir), !isDir.boolValue {
            let sha = try Hashing.sha256OfFile(atPath: target).hash
            var runs = try store.runsProducing(sha256: sha)
            guard !runs.isEmpty else {
                throw NotFoundError(notProducedMessage(file: target, sha: sha))
            }
            // The run repro served this very file from comes first; other runs that produced
            // the same bytes (another config, a rerun) follow.
            var served: String?
            let absolute = target.hasPrefix("/") ? target : FileManager.default.currentDirectoryPath + "/" + target
            if let m = try store.materialization(atPath: absolute), m.sha256 == sha,
                let i = runs.firstIndex(where: { $0.0.runId == m.runId })
            {
                served = m.runId
                runs.insert(runs.remove(at: i), at: 0)
            }
            var res = Resolution(
                runs: runs.map(\.0), kind: "file", sha256: sha,
                matchedOutputs: Dictionary(runs.map { ($0.0.runId, $0.1) }, uniquingKeysWith: { a, _ in a }))
            res.servedBy = served
            return res
        }
        let lower = target.lowercased()
        if lower.count == 64, lower.allSatisfy(\.isHexDigit) {
            let produced = try store.runsProducing(sha256: lower)
            if !produced.isEmpty {
                return Resolution(runs: produced.map(\.0), kind: "sha256", sha256: lower, matchedOutputs: Dictionary(produced.map { ($0.0.runId, $0.1) }, uniquingKeysWith: { a, _ in a }))
            }
            let byKey = try store.runs(forKey: lower)
            if !byKey.isEmpty { return Resolution(runs: byKey, kind: "key") }
            throw NotFoundError("no run in this store produced \(lower) (no output, and no cache key, has that SHA-256)")
        }
        if let run = try? store.run(matching: target) {
            return Resolution(runs: [run], kind: "run")
        }
        if target.count >= 6, lower.allSatisfy(\.isHexDigit), let key = try? store.resolveKey(prefix: lower) {
            return Resolution(runs: try store.runs(forKey: key), kind: "key")
        }
        throw NotFoundError(
            "no run in this store produced '\(target)': it is not a file, an output hash, a run id or a cache key here; "
                + "`repro log` lists runs")
    }

    /// Says clearly when a file's content is not any run's output: no run is accused. If repro
    /// itself wrote this path from a run, the file was changed since; runs that wrote a file of
    /// the same name are listed as what they are, not as its source.
    func notProducedMessage(file: String, sha: String) -> String {
        let name = (file as NSString).lastPathComponent
        var msg = "no run in this store produced these bytes (\(file), sha256 \(sha))"
        let absolute = file.hasPrefix("/") ? file : FileManager.default.currentDirectoryPath + "/" + file
        if let m = try? store.materialization(atPath: absolute) {
            msg += "; repro wrote this path from run \(m.runId) (sha256 \(m.sha256.prefix(12))), so it was changed after that"
        } else if let similar = try? store.outputsNamed(name), !similar.isEmpty {
            let runs = similar.prefix(3).map { "\($0.runId) (\($0.name), sha256 \($0.sha256.prefix(12)))" }.joined(separator: ", ")
            msg += ". Separately, \(similar.count) run(s) wrote a file named \(name): \(runs)\(similar.count > 3 ? ", ..." : "")"
        }
        return msg
    }

    /// Everything audit shows about one run, as JSON.
    public func entry(_ r: RunRecord, includePatch: Bool = false) throws -> JSONValue {
        var o = r.json.objectValue ?? [:]
        o["commit"] = .string(r.commit)
        o["commit_info"] = (repo?.commitInfo(r.commit) ?? CommitInfo(id: r.commit, present: false, reachable: false)).json
        o["params"] = r.config["params"] ?? .object([:])
        let state = r.cacheState(maxAge: maxAge)
        var cache: [String: JSONValue] = ["state": .string(state.rawValue)]
        cache["stale_reasons"] = .array(r.staleReasons.map(\.json))
        cache["invalidated_reason"] = r.invalidatedReason.json
        cache["outputs_evicted_at"] = r.outputsEvictedAt.json
        o["cache_state"] = .object(cache)
        o["executable"] = ["path": r.executablePath.json, "sha256": r.executableSha256.json]
        o["parents"] = .array(try Lineage(store: store, repoRoot: repo?.workdir).parents(of: r).map(\.json))
        o["attestations"] = .int(Int64(try store.attestations(runId: r.runId).count))
        o["verifications"] = .array(try store.verifications(forKey: r.key).map { $0 })
        // Producers that disagree on this key (a run computed here and one pulled, say).
        o["reproducibility_finding"] = try store.disagreements(forKeys: [r.key]).first?.json ?? .null
        if includePatch, let p = r.patchBlob {
            o["patch"] = .string(String(decoding: try store.readBlob(p), as: UTF8.self))
        }
        return .object(o)
    }
}
