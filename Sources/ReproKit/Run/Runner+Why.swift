import Foundation
import ReproSupport
import ReproStore

/// `repro why`: would this spec hit, and if not, what changed since its nearest earlier run.
public struct WhyReport: Sendable {
    public enum Verdict: String, Sendable { case hit, miss }

    /// One field that differs between the earlier run and the spec now.
    public struct Difference: Sendable {
        /// config, code, dirty, seed, input, key
        public var kind: String
        /// e.g. `solver.rtol`, `sim/`, `data/dose.csv`
        public var field: String
        public var old: JSONValue
        public var new: JSONValue

        public var json: JSONValue { ["kind": .string(kind), "field": .string(field), "old": old, "new": new] }
        public var text: String {
            func show(_ v: JSONValue) -> String {
                if case .string(let s) = v { return s.count == 64 || s.count == 40 ? String(s.prefix(12)) : s }
                return v.canonical
            }
            return "\(field) \(show(old)) → \(show(new))"
        }
    }

    public var verdict: Verdict
    public var name: String
    public var key: String
    /// The run a hit would be served from.
    public var hitRun: String?
    /// The nearest earlier run of the same spec name, compared field by field.
    public var comparedRun: String?
    public var differences: [Difference] = []
    /// Why an entry with the same key cannot be served (expired, invalidated, evicted, failed).
    public var unservable: String?

    /// The one-line answer (what `repro run` prints on a miss).
    public var line: String {
        if verdict == .hit { return "hit: same key as run \(hitRun ?? "?")" }
        if let u = unservable { return "miss: \(u)" }
        guard let compared = comparedRun else { return "miss: first run of '\(name)' in this store" }
        guard let first = differences.first else { return "miss: same fields as run \(compared) but another key" }
        let more = differences.count > 1 ? " (and \(differences.count - 1) more change\(differences.count > 2 ? "s" : ""))" : ""
        return "miss: \(first.text) since run \(compared)\(more)"
    }

    public var json: JSONValue {
        [
            "verdict": .string(verdict.rawValue), "name": .string(name), "key": .string(key), "hit_run": hitRun.json,
            "compared_run": comparedRun.json, "unservable": unservable.json,
            "differences": .array(differences.map(\.json)), "summary": .string(line),
        ]
    }
}

extension Runner {
    /// Computes the key the spec has now and explains the cache decision, without running.
    public func explain() throws(ReproErrorBox) -> WhyReport {
        try boxingErrors { try explain(try prepare()) }
    }

    /// `knownMiss`: the caller has just found no servable run (a miss about to run), so the
    /// store is not asked again. `running`: the run computing the key now, if recorded already
    /// (it is not what the miss is compared with).
    func explain(_ p: Prepared, knownMiss: Bool = false, running: String? = nil) throws -> WhyReport {
        let maxAge = p.config.maxAge
        var report = WhyReport(verdict: .miss, name: p.spec.name, key: p.key)
        if !knownMiss, let hit = try p.store.servableRun(forKey: p.key, maxAge: maxAge) {
            report.verdict = .hit
            report.hitRun = hit.runId
            report.comparedRun = hit.runId
            return report
        }
        // Succeeded runs sort first, so one row answers both questions below (a key invalidated
        // again and again must not make every miss decode twenty records).
        let sameKey = try p.store.runs(forKey: p.key, limit: 1, excluding: running)
        if let r = sameKey.first(where: { $0.status == .succeeded }) {
            report.comparedRun = r.runId
            switch r.cacheState(maxAge: maxAge) {
            case .evicted: report.unservable = "run \(r.runId) has this key but its outputs were evicted by `repro cache gc`"
            case .stale: report.unservable = "run \(r.runId) has this key but was invalidated: \(r.invalidatedReason ?? "by hand")"
            case .expired:
                report.unservable = "run \(r.runId) has this key but is older than cache.max_age (\(DurationText.format(maxAge)))"
            default: break
            }
            return report
        }
        if let r = sameKey.first {
            report.comparedRun = r.runId
            report.unservable = "run \(r.runId) has this key but \(r.status.rawValue); only succeeded runs are served"
            return report
        }
        guard let newest = try p.store.newestRun(named: p.spec.name) else { return report }
        // The nearest identity, not merely the newest run of the name: after a code commit the
        // newest run is often another sweep point, and its config would lead the explanation.
        var best = (run: newest, changes: differences(from: newest, to: p))
        let others = [try p.store.newestRun(named: p.spec.name, configHash: p.configHash), try p.store.newestRun(named: p.spec.name, code: p.identity.keyJSON)]
        for case let r? in others where r.runId != best.run.runId {
            let changes = differences(from: r, to: p)
            if changes.count < best.changes.count { best = (r, changes) }
        }
        report.comparedRun = best.run.runId
        report.differences = best.changes
        return report
    }

    func differences(from prev: RunRecord, to p: Prepared) -> [WhyReport.Difference] {
        let now = IdentityChanges.Side(
            config: p.spec.semanticConfig, identity: p.identity, patchHash: p.patch.map { Hashing.sha256Hex($0) }, seed: p.seed,
            inputs: p.inputs)
        let all = IdentityChanges.between(.init(prev), now).map { WhyReport.Difference(kind: $0.kind, field: $0.field, old: $0.old, new: $0.new) }
        // Code leads when code changed: it is what a commit changed, and what the user did.
        let code = all.filter { ["code", "dirty"].contains($0.kind) }
        return code + all.filter { !["code", "dirty"].contains($0.kind) }
    }
}
