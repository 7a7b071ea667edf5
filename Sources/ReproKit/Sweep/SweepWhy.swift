import Foundation
import Logging
import ReproSupport

/// `repro why SWEEP`: which points would hit, and for the first misses, why.
public struct SweepWhy: Sendable {
    public var points = 0
    public var hits = 0
    /// Explanations of the first misses, in sweep order.
    public var misses: [WhyReport] = []
    public var missCount = 0

    public var json: JSONValue {
        [
            "points": .int(Int64(points)), "hits": .int(Int64(hits)), "misses": .int(Int64(missCount)),
            "explained": .array(misses.map(\.json)),
        ]
    }
}

extension SweepRunner {
    /// Explains the sweep's cache decisions without running: the hits counted, up to `limit`
    /// misses explained as `repro why` explains a spec.
    public func explain(limit: Int = 5) throws -> SweepWhy {
        let points = try preparePoints()
        let table = points.table
        var out = SweepWhy()
        out.points = table.runCount
        let runner = Runner(RunRequest(specPath: request.sweepPath, environment: request.environment), logger: logger)
        var hitUnits = Set<Int>()
        for u in 0..<table.uniqueCount {
            if try points.store.servableRun(forKey: table.key(u), maxAge: points.config.maxAge) != nil {
                hitUnits.insert(u)
                continue
            }
            out.missCount += 1
            if out.misses.count < limit { out.misses.append(try runner.explain(try points.prepared(u), knownMiss: true)) }
        }
        out.hits = table.keyOfRun.filter { hitUnits.contains(Int($0)) }.count
        out.missCount = table.runCount - out.hits
        return out
    }
}
