import Foundation
import ReproExecution
import ReproSupport
import ReproStore

/// Durations of earlier succeeded runs, read once per spec name per command (a sweep of
/// thousands of points asks one query).
public final class EstimateHistory {
    let store: Store
    struct Past {
        var byConfig: [String: [Double]] = [:]
        /// Every run's duration and config, read when an estimate first scales by a param.
        var all: [(duration: Double, config: String)]?
        /// Seconds per unit of a scale param, computed once per param path.
        var rates: [[String]: [Double]] = [:]
        /// The median over every config of the name, and how many runs it took.
        var nameMedian: (Double?, Int)?
    }
    private var byName: [String: Past] = [:]
    /// Whether one spec is estimated (`repro run`): its own config's durations are read, not
    /// every run of its name (a sweep's 10,000 points share one name).
    let single: Bool

    public init(store: Store, single: Bool = false) {
        self.store = store
        self.single = single
    }

    func past(named name: String) throws(StoreError) -> Past {
        if let r = byName[name] { return r }
        var p = Past()
        for r in try store.durations(named: name) { p.byConfig[r.configHash, default: []].append(r.duration) }
        byName[name] = p
        return p
    }

    func rates(named name: String, scale: [String]) throws(StoreError) -> [Double] {
        var p = try past(named: name)
        if let r = p.rates[scale] { return r }
        if p.all == nil { p.all = try store.durationsWithConfigs(named: name) }
        var rates: [Double] = []
        for r in p.all ?? [] {
            guard let config = try? JSONParser.parse(Array(r.config.utf8)), let params = config["params"]?.objectValue,
                let then = EstimateSpec.value(scale, in: params), then > 0
            else { continue }
            rates.append(r.duration / then)
        }
        p.rates[scale] = rates
        byName[name] = p
        return rates
    }

    static func median(_ xs: [Double]) -> Double? {
        guard !xs.isEmpty else { return nil }
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// The three tiers in order: history, parametric, default.
    public func estimate(_ spec: SimulationSpec, configHash: String, orchestration o: Orchestration) throws -> RuntimeEstimate {
        let same = try single ? store.durations(named: spec.name, configHash: configHash) : past(named: spec.name).byConfig[configHash] ?? []
        if let m = EstimateHistory.median(same) {
            return RuntimeEstimate(seconds: m, tier: .history, detail: "median of \(same.count) earlier run(s) of this config")
        }
        if let scale = spec.estimate?.scale, let now = EstimateSpec.value(scale, in: spec.params), now > 0 {
            let rates = try self.rates(named: spec.name, scale: scale)
            if let rate = EstimateHistory.median(rates) {
                let name = "params." + scale.joined(separator: ".")
                return RuntimeEstimate(
                    seconds: rate * now, tier: .history,
                    detail: "median of \(rates.count) earlier run(s) of \(spec.name) per unit of \(name), times \(name) = \(String(format: "%g", now))")
            }
        }
        if let expr = spec.estimate?.seconds {
            let s = try expr.evaluate(params: spec.params, origin: spec.estimate?.origin ?? spec.sourcePath)
            return RuntimeEstimate(seconds: s, tier: .parametric, detail: "estimate.seconds: \(expr.text)")
        }
        // Other configs of the same spec: their median beats a 5-minute guess (a sweep's points
        // of one model mostly take alike; `estimate.scale` says how they differ when they do).
        var p = try past(named: spec.name)
        if p.nameMedian == nil {
            let all = p.byConfig.values.flatMap { $0 }
            p.nameMedian = (EstimateHistory.median(all), all.count)
            byName[spec.name] = p
        }
        if let (m, n) = p.nameMedian, let m {
            return RuntimeEstimate(
                seconds: m, tier: .history,
                detail: "median of \(n) earlier run(s) of \(spec.name) with other configs (no estimate.scale to scale by)")
        }
        return RuntimeEstimate(seconds: o.defaultEstimate, tier: .default, detail: "orchestration.default_estimate (no history, no estimate.seconds)")
    }
}

/// ADR-007's rule for `backend: auto`: under `local_below` local; over `cloud_above` the
/// backend `orchestration.cloud` names; in between ask (a prompt on a terminal, else
/// `ask_default`). `--backend` and an explicit spec backend always win.
public enum Router {
    /// Asks a person: the question, the choices, the default; nil when nobody can answer.
    public typealias Ask = @Sendable (_ question: String, _ choices: [String], _ defaultChoice: String) -> String?

    public static func route(
        requested: String?, specBackend: String, estimate e: RuntimeEstimate, config: StoreConfig, ask: Ask?
    ) -> Routing {
        if let requested, requested != Backends.auto { return Routing(backend: requested, reason: "--backend \(requested)", by: .option) }
        if specBackend != Backends.auto { return Routing(backend: specBackend, reason: "the spec says backend: \(specBackend)", by: .spec) }
        let o = config.orchestration
        let est = "estimate \(DurationText.format(e.seconds.rounded())) (\(e.tier.rawValue))"
        if e.seconds < o.localBelow {
            return Routing(backend: Backends.local, reason: "\(est) is under local_below \(DurationText.format(o.localBelow))", by: .auto)
        }
        guard let cloud = o.cloud else {
            return Routing(
                backend: Backends.local, reason: "\(est) is over local_below \(DurationText.format(o.localBelow)), but orchestration.cloud is not set; running locally",
                by: .auto)
        }
        if e.seconds > o.cloudAbove {
            return Routing(backend: cloud, reason: "\(est) is over cloud_above \(DurationText.format(o.cloudAbove))", by: .auto)
        }
        let band = "\(est) is between \(DurationText.format(o.localBelow)) and \(DurationText.format(o.cloudAbove))"
        let defaultChoice = o.askDefault == .cloud ? cloud : Backends.local
        if let ask, let answer = ask("\(band). Run it locally or on \(cloud)?", [Backends.local, cloud], defaultChoice) {
            return Routing(backend: answer, reason: "\(band); you chose \(answer)", by: .prompt)
        }
        return Routing(
            backend: defaultChoice, reason: "\(band); no terminal to ask on, so orchestration.ask_default (\(o.askDefault.rawValue)) chose \(defaultChoice)",
            by: .askDefault)
    }

    /// The cores a run asks for (`resources.cpus`, default 1): what core-hour prices multiply.
    public static func cores(_ resources: [String: JSONValue]) -> Int {
        if let n = resources["cpus"]?.intValue, n > 0 { return Int(n) }
        if let s = resources["cpus"]?.stringValue, let n = Int(s), n > 0 { return n }
        return 1
    }
}

/// A dispatch that would exceed a budget: exit 2, with the figures.
public struct BudgetError: ReproError {
    public let message: String
    public var exitCode: Int32 { 2 }
    public var description: String { message }
}

public enum Budget {
    /// Refuses when a run's or a sweep's estimated cost, or the month's spending with it,
    /// would exceed `orchestration.budget`. Nothing has been submitted when this throws.
    public static func check(estimate: Double?, scope: String, store: Store, config: StoreConfig, overBudget: Bool) throws {
        guard !overBudget, let estimate, estimate > 0 else { return }
        let o = config.orchestration
        let cur = o.currency
        let limit = scope == "sweep" ? o.budgetPerSweep : o.budgetPerRun
        if let limit, estimate > limit {
            let set = o.budgetOrigins["per_" + scope] ?? o.origin
            throw BudgetError(
                message: "over budget: this \(scope) is estimated at \(Money.format(estimate, cur)), over orchestration.budget.per_\(scope) "
                    + "\(Money.limit(limit, cur)) (set at \(set)); nothing was submitted. Pass --over-budget to run it anyway, or raise the limit there")
        }
        if let month = o.budgetPerMonth {
            let spent = try store.costSince(Clock.monthStart(Clock.now()))
            if spent + estimate > month {
                throw BudgetError(
                    message: "over budget: \(Money.format(spent, cur)) spent this month plus this \(scope)'s estimated \(Money.format(estimate, cur)) "
                        + "exceeds orchestration.budget.per_month \(Money.limit(month, cur)) (set at \(o.budgetOrigins["per_month"] ?? o.origin)); "
                        + "nothing was submitted. Pass --over-budget to run it anyway")
            }
        }
    }
}
