import Foundation
import ReproExecution
import ReproSupport

/// `orchestration:` in `.repro.yaml`: where `backend: auto` sends a run, what it may cost, and
/// what happens when a backend fails. Defaults from the seed ADR-007.
///
/// ```yaml
/// orchestration:
///   cloud: hpc                  # a named backend, or slurm
///   ask_default: local          # 1-10 h without a terminal to ask on
///   thresholds: {local_below: 1h, cloud_above: 10h}
///   default_estimate: 5m
///   burst_after: 1h             # a sweep keeps on the local pool what it finishes in this time
///   queue_depth_threshold: 100  # or: keep at most this many points local, burst the rest
///   budget: {per_run: 5.0, per_sweep: 50.0, per_month: 200.0}
///   currency: EUR
///   retries: 2                  # after a backend failure, before falling back
///   retry_delay: 5s
///   outage_limit: 1h            # how long a submitted run is waited for through an outage
/// prices:
///   local: {watts: 65, per_kwh: 0.30}
///   slurm: {per_core_hour: 0.05}
///   hpc: {per_core_hour: 0.12, spot_discount: 0.7, per_gb_staged: 0.02}
/// ```
public struct Orchestration: Sendable {
    public var cloud: String?
    /// What the middle band runs on when there is no terminal to ask on.
    public enum AskDefault: String, Sendable { case local, cloud }
    public var askDefault = AskDefault.local
    public var localBelow: Double = 3600
    public var cloudAbove: Double = 36000
    public var defaultEstimate: Double = 300
    public var burstAfter: Double = 3600
    public var queueDepthThreshold: Int?
    public var budgetPerRun: Double?
    public var budgetPerSweep: Double?
    public var budgetPerMonth: Double?
    public var currency = "USD"
    public var retries = 2
    public var retryDelay: Double = 5
    /// How long polling goes on through a throttled or unreachable service before repro stops
    /// waiting (the submitted jobs run on; `repro wait` collects them).
    public var outageLimit: Double = 3600
    public var origin = ""
    /// Where each budget limit was set (file:line), for the refusal to point at.
    public var budgetOrigins: [String: String] = [:]

    public init() {}

    static func parse(_ node: SpecNode) throws(ConfigError) -> Orchestration {
        guard case .mapping(let pairs, _) = node else {
            throw ConfigError(at: node.origin, "orchestration must be a mapping such as {cloud: hpc, thresholds: {local_below: 1h}}")
        }
        var o = Orchestration()
        o.origin = "\(node.origin)"
        func text(_ v: SpecNode, _ k: String) throws(ConfigError) -> String {
            guard case .scalar(let t, _, _) = v, !t.isEmpty else { throw ConfigError(at: v.origin, key: "orchestration.\(k)", "must be a single value") }
            return t
        }
        func duration(_ v: SpecNode, _ k: String) throws(ConfigError) -> Double {
            guard let d = DurationText.seconds(try text(v, k)) else {
                throw ConfigError(at: v.origin, key: "orchestration.\(k)", "must be a duration such as 90s, 30m, 1h or 2d")
            }
            return d
        }
        func money(_ v: SpecNode, _ k: String) throws(ConfigError) -> Double {
            guard let d = Double(try text(v, k)), d.isFinite, d >= 0 else {
                throw ConfigError(at: v.origin, key: "orchestration.\(k)", "must be an amount >= 0 in your currency, such as 50.0")
            }
            return d
        }
        for (k, v) in pairs {
            switch k {
            case "cloud":
                let name = try text(v, k)
                guard Backends.isValidName(name), name != Backends.auto else {
                    throw ConfigError(at: v.origin, key: "orchestration.cloud", "'\(name)' must name a backend (slurm, or one under backends:)")
                }
                o.cloud = name
            case "ask_default":
                let t = try text(v, k)
                guard let choice = AskDefault(rawValue: t) else { throw ConfigError(at: v.origin, key: "orchestration.ask_default", "must be local or cloud") }
                o.askDefault = choice
            case "thresholds":
                guard case .mapping(let tp, _) = v else {
                    throw ConfigError(at: v.origin, key: "orchestration.thresholds", "must be a mapping such as {local_below: 1h, cloud_above: 10h}")
                }
                for (tk, tv) in tp {
                    switch tk {
                    case "local_below": o.localBelow = try duration(tv, "thresholds.local_below")
                    case "cloud_above": o.cloudAbove = try duration(tv, "thresholds.cloud_above")
                    default: throw ConfigError(at: tv.origin, "unknown key 'orchestration.thresholds.\(tk)'; known: local_below, cloud_above")
                    }
                }
                guard o.localBelow <= o.cloudAbove else {
                    throw ConfigError(at: v.origin, "orchestration.thresholds: local_below must not be more than cloud_above")
                }
            case "default_estimate": o.defaultEstimate = try duration(v, k)
            case "burst_after": o.burstAfter = try duration(v, k)
            case "queue_depth_threshold":
                guard let n = Int(try text(v, k)), n >= 0 else { throw ConfigError(at: v.origin, key: "orchestration.queue_depth_threshold", "must be a whole number >= 0") }
                o.queueDepthThreshold = n
            case "budget":
                guard case .mapping(let bp, _) = v else {
                    throw ConfigError(at: v.origin, key: "orchestration.budget", "must be a mapping such as {per_run: 5.0, per_sweep: 50.0, per_month: 200.0}")
                }
                for (bk, bv) in bp {
                    o.budgetOrigins[bk] = "\(bv.origin)"
                    switch bk {
                    case "per_run": o.budgetPerRun = try money(bv, "budget.per_run")
                    case "per_sweep": o.budgetPerSweep = try money(bv, "budget.per_sweep")
                    case "per_month": o.budgetPerMonth = try money(bv, "budget.per_month")
                    default: throw ConfigError(at: bv.origin, "unknown key 'orchestration.budget.\(bk)'; known: per_run, per_sweep, per_month")
                    }
                }
            case "currency": o.currency = try text(v, k)
            case "retries":
                guard let n = Int(try text(v, k)), n >= 0, n <= 20 else { throw ConfigError(at: v.origin, key: "orchestration.retries", "must be a whole number from 0 to 20") }
                o.retries = n
            case "retry_delay": o.retryDelay = try duration(v, k)
            case "outage_limit": o.outageLimit = try duration(v, k)
            default:
                throw ConfigError(
                    "\(v.origin): unknown key 'orchestration.\(k)'; known: cloud, ask_default, thresholds, default_estimate, burst_after, queue_depth_threshold, budget, currency, retries, retry_delay, outage_limit")
            }
        }
        return o
    }
}

/// What running on a backend costs, from `prices:` (per backend name, else per type).
public struct Price: Sendable {
    /// Local: the machine's draw and the electricity price.
    public var watts: Double?
    public var perKWh: Double?
    public var perCoreHour: Double?
    public var perNodeHour: Double?
    /// The fraction taken off the compute price (spot or preemptible capacity): 0.7 = 70% off.
    public var spotDiscount: Double = 0
    public var perGBStaged: Double?

    static func parse(name: String, _ node: SpecNode) throws(ConfigError) -> Price {
        guard case .mapping(let pairs, _) = node else {
            throw ConfigError(at: node.origin, key: "prices.\(name)", "must be a mapping such as {per_core_hour: 0.05} or {watts: 65, per_kwh: 0.30}")
        }
        var p = Price()
        for (k, v) in pairs {
            guard case .scalar(let t, _, _) = v, let d = Double(t), d.isFinite, d >= 0 else {
                throw ConfigError(at: v.origin, key: "prices.\(name).\(k)", "must be a number >= 0")
            }
            switch k {
            case "watts": p.watts = d
            case "per_kwh": p.perKWh = d
            case "per_core_hour": p.perCoreHour = d
            case "per_node_hour": p.perNodeHour = d
            case "spot_discount":
                guard d < 1 else { throw ConfigError(at: v.origin, key: "prices.\(name).spot_discount", "is the fraction off (0.7 = 70% off); it must be below 1") }
                p.spotDiscount = d
            case "per_gb_staged": p.perGBStaged = d
            default:
                throw ConfigError(at: v.origin, "unknown key 'prices.\(name).\(k)'; known: watts, per_kwh, per_core_hour, per_node_hour, spot_discount, per_gb_staged")
            }
        }
        guard (p.watts == nil) == (p.perKWh == nil) else {
            throw ConfigError(at: node.origin, key: "prices.\(name)", "needs both watts and per_kwh for an electricity price")
        }
        return p
    }

    /// The cost of `seconds` on `cores` cores, staging `stagedBytes` through object storage.
    public func cost(seconds: Double, cores: Int, stagedBytes: Int64 = 0) -> Double {
        let hours = max(0, seconds) / 3600
        var c = 0.0
        if let w = watts, let k = perKWh { c += w / 1000 * hours * k }
        var compute = 0.0
        if let ch = perCoreHour { compute += ch * Double(max(1, cores)) * hours }
        if let nh = perNodeHour { compute += nh * hours }
        c += compute * (1 - spotDiscount)
        if let g = perGBStaged { c += g * Double(stagedBytes) / 1e9 }
        return c
    }
}

extension StoreConfig {
    /// The price of a backend: `prices.NAME`, else `prices.TYPE` (slurm-rest, ...), else nil.
    public func price(backend name: String) -> Price? {
        if let p = prices[name] { return p }
        if let t = backends[name]?.type { return prices[t] }
        return nil
    }
}

/// Money in the configured currency, as people read it.
public enum Money {
    public static func format(_ v: Double?, _ currency: String) -> String {
        guard let v else { return "-" }
        // Tiny amounts (a second of a small instance) keep their digits: "0.0000" hides them.
        if v != 0 && abs(v) < 0.0001 { return String(format: "%.2e", v) + " " + currency }
        if v != 0 && abs(v) < 0.01 { return String(format: "%.4f", v) + " " + currency }
        return String(format: "%.2f", v) + " " + currency
    }

    /// A limit as the user wrote it (0.00005, not 0.0000).
    public static func limit(_ v: Double, _ currency: String) -> String {
        String(format: "%g", v) + " " + currency
    }
}
