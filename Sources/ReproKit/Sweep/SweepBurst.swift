import Foundation
import ReproExecution
import ReproSupport
import ReproStore

/// How a sweep's points to run are split between backends, with estimated time and cost.
public struct SweepPlan: Sendable {
    public struct Part: Sendable {
        public var backend: String
        public var points: Int
        /// Wall time: the local pool runs `jobs` at once; a scheduler is assumed to run every
        /// point at once (its longest estimate).
        public var wallSeconds: Double
        public var cost: Double?
        public var reason: String

        public var json: JSONValue {
            [
                "backend": .string(backend), "points": .int(Int64(points)), "estimate_wall_s": .double(wallSeconds),
                "cost_estimate": cost.map { .double($0) } ?? .null, "reason": .string(reason),
            ]
        }
    }

    public struct Point: Sendable {
        public var key: String
        public var cache: CacheOutcome
        public var backend: String
        public var estimate: RuntimeEstimate?
        public var costEstimate: Double?
    }

    public var points = 0
    public var hits = 0
    public var toRun: Int { points - hits }
    public var parts: [Part] = []
    public var runs: [Point] = []
    public var currency = "USD"
    public var totalCost: Double? {
        let priced = parts.compactMap(\.cost)
        return priced.isEmpty ? nil : priced.reduce(0, +)
    }

    public var json: JSONValue {
        [
            "points": .int(Int64(points)), "hits": .int(Int64(hits)), "to_run": .int(Int64(toRun)), "parts": .array(parts.map(\.json)),
            "cost_estimate": totalCost.map { .double($0) } ?? .null, "currency": .string(currency),
            "runs": .array(runs.map {
                [
                    "key": .string($0.key), "cache": .string($0.cache.rawValue), "backend": .string($0.backend),
                    "estimate_s": $0.estimate.map { .double($0.seconds) } ?? .null,
                    "estimate_tier": $0.estimate.map { .string($0.tier.rawValue) } ?? .null,
                    "cost_estimate": $0.costEstimate.map { .double($0) } ?? .null,
                ]
            }),
        ]
    }
}

/// The spawn guide's burst rule: with `backend: auto`, the local pool keeps the points it can
/// finish within `orchestration.burst_after` (estimates over the pool size; or, with
/// `queue_depth_threshold`, that many points), in sweep order; the rest go to
/// `orchestration.cloud` as job arrays.
enum SweepBurst {
    struct Split {
        /// Per point to run, in order: the backend and the estimate (`estimates` is empty
        /// when nothing was estimated: a named backend needs no estimate to be chosen).
        var backends: [String]
        var estimates: [RuntimeEstimate]
        var reasons: [String: String]

        func estimate(_ i: Int) -> RuntimeEstimate? { estimates.isEmpty ? nil : estimates[i] }
    }

    /// `estimate(i)`: the runtime estimate of the i-th point to run (asked only for `auto`).
    static func split(
        _ count: Int, estimate: (Int) throws -> RuntimeEstimate, backend requested: String, config: StoreConfig, jobs: Int
    ) throws -> Split {
        let o = config.orchestration
        guard requested == Backends.auto else {
            return Split(
                backends: [String](repeating: requested, count: count), estimates: [], reasons: [requested: "--backend or the sweep's backend"])
        }
        var estimates: [RuntimeEstimate] = []
        estimates.reserveCapacity(count)
        for i in 0..<count { estimates.append(try estimate(i)) }
        guard let cloud = o.cloud else {
            return Split(
                backends: [String](repeating: Backends.local, count: count), estimates: estimates,
                reasons: [Backends.local: "orchestration.cloud is not set: every point runs on the local pool"])
        }
        var backends: [String] = []
        var localSeconds = 0.0
        var localCount = 0
        let pool = Double(max(1, jobs))
        for e in estimates {
            let s = e.seconds
            let fits: Bool
            if let depth = o.queueDepthThreshold {
                fits = localCount < depth
            } else {
                fits = (localSeconds + s) / pool <= o.burstAfter
            }
            if fits {
                localSeconds += s
                localCount += 1
                backends.append(Backends.local)
            } else {
                backends.append(cloud)
            }
        }
        let rule = o.queueDepthThreshold.map { "queue_depth_threshold \($0)" }
            ?? "burst_after \(DurationText.format(o.burstAfter)) on a pool of \(Int(pool))"
        return Split(
            backends: backends, estimates: estimates,
            reasons: [
                Backends.local: "what the local pool finishes within \(rule)",
                cloud: "the rest, burst to orchestration.cloud (\(rule))",
            ])
    }

    /// The plan for the points to run: parts per backend with wall time and cost.
    /// The points are prepared (regenerated) only where a backend has a price.
    static func plan(_ count: Int, prepared: (Int) throws -> Runner.Prepared, split: Split, config: StoreConfig, jobs: Int) throws
        -> (parts: [SweepPlan.Part], costs: [Double?])
    {
        var order: [String] = []
        var byBackend: [String: (n: Int, seconds: Double, longest: Double, cost: Double?)] = [:]
        var costs: [Double?] = []
        costs.reserveCapacity(count)
        var priced: [String: Bool] = [:]
        for i in 0..<count {
            let b = split.backends[i]
            let s = split.estimate(i)?.seconds ?? config.orchestration.defaultEstimate
            let hasPrice = priced[b] ?? (config.price(backend: b) != nil)
            priced[b] = hasPrice
            let c = hasPrice ? Runner.costEstimate(try prepared(i), backend: b, seconds: s) : nil
            costs.append(c)
            if byBackend[b] == nil { order.append(b) }
            var e = byBackend[b] ?? (0, 0, 0, nil)
            e.n += 1
            e.seconds += s
            e.longest = max(e.longest, s)
            if let c { e.cost = (e.cost ?? 0) + c }
            byBackend[b] = e
        }
        let parts = order.map { b -> SweepPlan.Part in
            let e = byBackend[b] ?? (0, 0, 0, nil)
            let local = Backends.isLocal(b, config: config)
            return SweepPlan.Part(
                backend: b, points: e.n, wallSeconds: local ? e.seconds / Double(max(1, jobs)) : e.longest, cost: e.cost,
                reason: split.reasons[b] ?? "")
        }
        return (parts, costs)
    }
}
